//! Control messages: what they look like on the wire, and what a node does
//! with each one it receives.

use std::sync::Arc;

use ergo_etf::{Atom, Pid, Ref, Term};

use crate::dist::conn::Conn;
use crate::dist::wire::{Control, Ctl, Incoming, ProcId};
use crate::message::Message;
use crate::node::NodeInner;
use crate::process::Watched;
use crate::reason::Reason;

pub(crate) const LINK: i64 = 1;
pub(crate) const SEND: i64 = 2;
pub(crate) const EXIT: i64 = 3;
pub(crate) const UNLINK: i64 = 4;
pub(crate) const REG_SEND: i64 = 6;
pub(crate) const GROUP_LEADER: i64 = 7;
pub(crate) const EXIT2: i64 = 8;
pub(crate) const SEND_TT: i64 = 12;
pub(crate) const EXIT_TT: i64 = 13;
pub(crate) const REG_SEND_TT: i64 = 16;
pub(crate) const EXIT2_TT: i64 = 18;
pub(crate) const MONITOR_P: i64 = 19;
pub(crate) const DEMONITOR_P: i64 = 20;
pub(crate) const MONITOR_P_EXIT: i64 = 21;
pub(crate) const SEND_SENDER: i64 = 22;
pub(crate) const SEND_SENDER_TT: i64 = 23;
pub(crate) const PAYLOAD_EXIT: i64 = 24;
pub(crate) const PAYLOAD_EXIT_TT: i64 = 25;
pub(crate) const PAYLOAD_EXIT2: i64 = 26;
pub(crate) const PAYLOAD_EXIT2_TT: i64 = 27;
pub(crate) const PAYLOAD_MONITOR_P_EXIT: i64 = 28;
pub(crate) const SPAWN_REQUEST: i64 = 29;
pub(crate) const SPAWN_REQUEST_TT: i64 = 30;
pub(crate) const SPAWN_REPLY: i64 = 31;
pub(crate) const SPAWN_REPLY_TT: i64 = 32;
pub(crate) const ALIAS_SEND: i64 = 33;
pub(crate) const ALIAS_SEND_TT: i64 = 34;
pub(crate) const UNLINK_ID: i64 = 35;
pub(crate) const UNLINK_ID_ACK: i64 = 36;

// A control message is a tuple; it is built here as its elements, on the
// stack, and written element by element (no tuple is allocated).

/// `{22, From, To}`: a message to a pid.
pub(crate) fn send_sender(from: Pid, to: Pid) -> Ctl<'static> {
    Ctl::SendSender { from, to }
}

/// `{6, From, '', Name}`: a message to a registered name.
pub(crate) fn reg_send(from: Pid, name: Atom) -> Ctl<'static> {
    Ctl::RegSend { from, name }
}

pub(crate) fn link(from: Pid, to: Pid) -> [Term; 3] {
    [Term::Int(LINK), Term::Pid(from), Term::Pid(to)]
}

pub(crate) fn unlink_id(id: u64, from: Pid, to: Pid) -> [Term; 4] {
    [
        Term::Int(UNLINK_ID),
        Term::Int(id as i64),
        Term::Pid(from),
        Term::Pid(to),
    ]
}

/// `{19, From, To, Ref}`: `From` monitors `To` (a pid or a name).
pub(crate) fn monitor_p(from: Pid, to: ProcId, reference: Ref) -> Ctl<'static> {
    Ctl::Monitor {
        op: MONITOR_P as u8,
        from,
        to,
        reference,
    }
}

/// `{20, From, To, Ref}`: takes back a monitor.
pub(crate) fn demonitor_p(from: Pid, to: ProcId, reference: Ref) -> Ctl<'static> {
    Ctl::Monitor {
        op: DEMONITOR_P as u8,
        from,
        to,
        reference,
    }
}

/// A control message's elements as the tuple Erlang would print.
fn show(c: &[Term]) -> String {
    let mut s = String::from("{");
    for (i, t) in c.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&t.to_string());
    }
    s.push('}');
    s
}

/// Whether exits to this peer carry their reason as the payload.
fn payload_exits(conn: &Conn) -> bool {
    conn.info
        .get()
        .is_some_and(|p| p.flags & crate::dist::handshake::flags::EXIT_PAYLOAD != 0)
}

/// What an exit-like signal is.
pub(crate) enum Signal {
    /// A linked process ended (`EXIT`).
    Link,
    /// `exit/2` (`EXIT2`).
    Exit2,
    /// A monitored process ended (`MONITOR_P_EXIT`): the monitored
    /// process (pid or registered name) and the monitor's reference.
    Down(Term, Ref),
}

impl NodeInner {
    /// Sends an exit signal, link break or monitor notice to `to`'s node.
    pub(crate) fn dist_signal(
        self: &Arc<Self>,
        from: Pid,
        to: Pid,
        signal: Signal,
        reason: Reason,
    ) {
        let Some(conn) = self.connection(to.node) else {
            return;
        };
        let reason = reason.to_term();
        let (from_t, to_t) = (Term::Pid(from), Term::Pid(to));
        let _ = match (signal, payload_exits(&conn)) {
            (Signal::Link, true) => {
                conn.send(&[Term::Int(PAYLOAD_EXIT), from_t, to_t], Some(&reason))
            }
            (Signal::Link, false) => conn.send(&[Term::Int(EXIT), from_t, to_t, reason], None),
            (Signal::Exit2, true) => {
                conn.send(&[Term::Int(PAYLOAD_EXIT2), from_t, to_t], Some(&reason))
            }
            (Signal::Exit2, false) => conn.send(&[Term::Int(EXIT2), from_t, to_t, reason], None),
            (Signal::Down(proc_, r), true) => conn.send(
                &[Term::Int(PAYLOAD_MONITOR_P_EXIT), proc_, to_t, Term::Ref(r)],
                Some(&reason),
            ),
            (Signal::Down(proc_, r), false) => conn.send(
                &[Term::Int(MONITOR_P_EXIT), proc_, to_t, Term::Ref(r), reason],
                None,
            ),
        };
    }

    /// Acts on a message from `conn`'s peer. An error closes the
    /// connection.
    pub(crate) fn dist_incoming(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        m: &mut Incoming,
    ) -> Result<(), String> {
        let carried = &mut m.payload;
        match &mut m.control {
            Control::Send { to } => {
                let msg = carried
                    .take()
                    .ok_or_else(|| format!("a message to {to} without its payload"))?;
                self.with_pcb(*to, |p| p.deliver(Message::Term(msg)));
            }
            Control::RegSend { name, .. } => {
                let msg = carried
                    .take()
                    .ok_or_else(|| format!("a message to {name} without its payload"))?;
                let to = self.whereis(*name);
                if to
                    .and_then(|to| self.with_pcb(to, |p| p.deliver(Message::Term(msg))))
                    .is_none()
                {
                    tracing::debug!(name = %name, "a message from {} to an unregistered name is dropped", conn.peer);
                }
            }
            &mut Control::Monitor {
                from,
                to,
                reference,
            } => self.remote_monitor(from, to, reference),
            &mut Control::Demonitor { to, reference, .. } => {
                let target = match to {
                    ProcId::Pid(p) => Some(p),
                    ProcId::Name(n) => self.whereis(n),
                };
                if let Some(p) = target {
                    self.with_pcb(p, |p| p.state.lock().monitored_by.remove(&reference));
                }
            }
            Control::Other(c) => return self.other_control(conn, c, carried),
        }
        Ok(())
    }

    /// `MONITOR_P` from `from`, a process of another node.
    fn remote_monitor(self: &Arc<Self>, from: Pid, to: ProcId, reference: Ref) {
        let (target, object) = match to {
            ProcId::Pid(p) => (Some(p), Watched::Pid(p)),
            ProcId::Name(n) => (self.whereis(n), Watched::Name(n, self.name)),
        };
        let watched = target
            .and_then(|p| self.with_pcb(p, |p| p.add_watcher(reference, from, object)))
            .unwrap_or(false);
        if !watched {
            let me = target.unwrap_or(Pid::new(self.name, 0, 0, self.creation()));
            self.dist_signal(
                me,
                from,
                Signal::Down(object.proc_term(), reference),
                Reason::NoProc,
            );
        }
    }

    /// The control messages [`Control`] has no fields for, as their
    /// elements.
    fn other_control(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        c: &mut [Term],
        carried: &mut Option<Term>,
    ) -> Result<(), String> {
        let Some(&Term::Int(tag)) = c.first() else {
            return Err(format!("control message {} has no operation", show(c)));
        };
        let pid = |c: &[Term], i: usize| match c.get(i) {
            Some(Term::Pid(p)) => Ok(*p),
            _ => Err(format!(
                "control message {}: element {} is not a pid",
                show(c),
                i + 1
            )),
        };
        let mut payload = |c: &[Term]| {
            carried
                .take()
                .ok_or_else(|| format!("control message {} lacks its payload", show(c)))
        };
        let arity = |c: &[Term], n: usize| {
            if c.len() == n {
                Ok(())
            } else {
                Err(format!("control message {} has the wrong arity", show(c)))
            }
        };
        match tag {
            SEND | SEND_TT | SEND_SENDER | SEND_SENDER_TT | REG_SEND | REG_SEND_TT | MONITOR_P
            | DEMONITOR_P => {
                // Well-formed, these were read into their fields.
                return Err(format!("malformed control message {}", show(c)));
            }
            ALIAS_SEND | ALIAS_SEND_TT => {
                let Some(Term::Ref(alias)) = c.get(2) else {
                    return Err(format!("ALIAS_SEND {} without an alias", show(c)));
                };
                let msg = Message::Term(payload(c)?);
                let target = self.dist.aliases.read().get(alias).copied();
                if let Some(to) = target {
                    self.with_pcb(to, |p| p.deliver(msg));
                }
            }
            LINK => {
                arity(c, 3)?;
                let (from, to) = (pid(c, 1)?, pid(c, 2)?);
                let linked = self.lookup(to).is_some_and(|p| {
                    let mut st = p.state.lock();
                    if st.alive {
                        st.links.insert_new(from, ());
                    }
                    st.alive
                });
                if !linked {
                    self.dist_signal(to, from, Signal::Link, Reason::NoProc);
                }
            }
            UNLINK => {
                let (from, to) = (pid(c, 1)?, pid(c, 2)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().links.remove(&from);
                }
            }
            UNLINK_ID => {
                arity(c, 4)?;
                let (from, to) = (pid(c, 2)?, pid(c, 3)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().links.remove(&from);
                }
                let _ = conn.send(
                    &[
                        Term::Int(UNLINK_ID_ACK),
                        c[1].clone(),
                        Term::Pid(to),
                        Term::Pid(from),
                    ],
                    None,
                );
            }
            UNLINK_ID_ACK => {}
            EXIT | EXIT_TT | PAYLOAD_EXIT | PAYLOAD_EXIT_TT | EXIT2 | EXIT2_TT | PAYLOAD_EXIT2
            | PAYLOAD_EXIT2_TT => {
                let (from, to) = (pid(c, 1)?, pid(c, 2)?);
                let reason = match tag {
                    EXIT | EXIT2 => c.get_mut(3).map(std::mem::take),
                    EXIT_TT | EXIT2_TT => c.get_mut(4).map(std::mem::take),
                    _ => carried.take(),
                }
                .ok_or_else(|| format!("exit {} without a reason", show(c)))?;
                let Some(p) = self.lookup(to) else {
                    return Ok(());
                };
                if matches!(tag, EXIT2 | EXIT2_TT | PAYLOAD_EXIT2 | PAYLOAD_EXIT2_TT) {
                    // `exit/2`: a signal of its own, whatever the links.
                    p.exit_signal(from, Reason::from_term(reason), true);
                } else {
                    // A linked process ended: only through a link still
                    // there.
                    let mut st = p.state.lock();
                    if st.links.remove(&from).is_some() {
                        p.exit_signal(from, Reason::from_term(reason), false);
                    }
                }
            }
            MONITOR_P_EXIT | PAYLOAD_MONITOR_P_EXIT => {
                let to = pid(c, 2)?;
                let Some(&Term::Ref(reference)) = c.get(3) else {
                    return Err(format!("monitor exit {} without a reference", show(c)));
                };
                let reason = if tag == MONITOR_P_EXIT {
                    c.get_mut(4).map(std::mem::take)
                } else {
                    carried.take()
                }
                .ok_or_else(|| format!("monitor exit {} without a reason", show(c)))?;
                if let Some(p) = self.lookup(to) {
                    let mut st = p.state.lock();
                    if let Some(entry) = st.monitors.remove(&reference) {
                        p.deliver(Message::Down {
                            reference,
                            object: entry.object.to_term(),
                            reason: Reason::from_term(reason),
                        });
                    }
                }
            }
            GROUP_LEADER => {
                let (from, to) = (pid(c, 1)?, pid(c, 2)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().group_leader = Some(from);
                }
            }
            SPAWN_REQUEST | SPAWN_REQUEST_TT => {
                self.spawn_request(conn, c, payload(c)?)?;
            }
            SPAWN_REPLY | SPAWN_REPLY_TT => {
                tracing::debug!("a spawn reply nobody asked for: {}", show(c));
            }
            other => {
                tracing::warn!(node = %conn.peer, "ignored control message with operation {other}: {}", show(c));
            }
        }
        Ok(())
    }
}
