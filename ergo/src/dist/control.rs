//! Control messages: what they look like on the wire, and what a node does
//! with each one it receives.

use std::sync::Arc;

use ergo_etf::{Atom, Pid, Ref, Term};

use crate::dist::conn::Conn;
use crate::dist::wire::Incoming;
use crate::message::Message;
use crate::node::NodeInner;
use crate::process::MonitorEntry;
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

fn op(tag: i64, rest: impl IntoIterator<Item = Term>) -> Term {
    Term::Tuple(std::iter::once(Term::Int(tag)).chain(rest).collect())
}

/// `{22, From, To}`: a message to a pid.
pub(crate) fn send_sender(from: Pid, to: Pid) -> Term {
    op(SEND_SENDER, [Term::Pid(from), Term::Pid(to)])
}

/// `{6, From, '', Name}`: a message to a registered name.
pub(crate) fn reg_send(from: Pid, name: Atom) -> Term {
    op(
        REG_SEND,
        [Term::Pid(from), Term::atom(""), Term::Atom(name)],
    )
}

pub(crate) fn link(from: Pid, to: Pid) -> Term {
    op(LINK, [Term::Pid(from), Term::Pid(to)])
}

pub(crate) fn unlink_id(id: u64, from: Pid, to: Pid) -> Term {
    op(
        UNLINK_ID,
        [Term::Int(id as i64), Term::Pid(from), Term::Pid(to)],
    )
}

pub(crate) fn monitor_p(from: Pid, to: Term, reference: Ref) -> Term {
    op(MONITOR_P, [Term::Pid(from), to, Term::Ref(reference)])
}

pub(crate) fn demonitor_p(from: Pid, to: Term, reference: Ref) -> Term {
    op(DEMONITOR_P, [Term::Pid(from), to, Term::Ref(reference)])
}

/// What a monitor's control messages name as the monitored process: its
/// pid, or its registered name (a `{Name, Node}` object gives the name).
pub(crate) fn monitored_proc(object: &Term) -> Term {
    match object {
        Term::Tuple(v) if v.len() == 2 => v[0].clone(),
        other => other.clone(),
    }
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
        let payload = payload_exits(&conn);
        let (control, payload) = match (signal, payload) {
            (Signal::Link, true) => (
                op(PAYLOAD_EXIT, [Term::Pid(from), Term::Pid(to)]),
                Some(reason),
            ),
            (Signal::Link, false) => (op(EXIT, [Term::Pid(from), Term::Pid(to), reason]), None),
            (Signal::Exit2, true) => (
                op(PAYLOAD_EXIT2, [Term::Pid(from), Term::Pid(to)]),
                Some(reason),
            ),
            (Signal::Exit2, false) => (op(EXIT2, [Term::Pid(from), Term::Pid(to), reason]), None),
            (Signal::Down(proc_, r), true) => (
                op(PAYLOAD_MONITOR_P_EXIT, [proc_, Term::Pid(to), Term::Ref(r)]),
                Some(reason),
            ),
            (Signal::Down(proc_, r), false) => (
                op(MONITOR_P_EXIT, [proc_, Term::Pid(to), Term::Ref(r), reason]),
                None,
            ),
        };
        let _ = conn.send(control, payload);
    }

    /// Acts on a message from `conn`'s peer. An error closes the
    /// connection.
    pub(crate) fn dist_incoming(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        m: Incoming,
    ) -> Result<(), String> {
        let Term::Tuple(c) = &m.control else {
            return Err(format!("control message {} is not a tuple", m.control));
        };
        let Some(Term::Int(tag)) = c.first() else {
            return Err(format!("control message {} has no operation", m.control));
        };
        let pid = |i: usize| match c.get(i) {
            Some(Term::Pid(p)) => Ok(*p),
            _ => Err(format!(
                "control message {}: element {} is not a pid",
                m.control,
                i + 1
            )),
        };
        let payload = || {
            m.payload
                .clone()
                .ok_or_else(|| format!("control message {} lacks its payload", m.control))
        };
        let arity = |n: usize| {
            if c.len() == n {
                Ok(())
            } else {
                Err(format!("control message {} has the wrong arity", m.control))
            }
        };
        match *tag {
            SEND | SEND_TT | SEND_SENDER | SEND_SENDER_TT => {
                let to = pid(2)?;
                if let Some(p) = self.lookup(to) {
                    p.deliver(Message::Term(payload()?));
                }
            }
            REG_SEND | REG_SEND_TT => {
                let Some(Term::Atom(name)) = c.get(3) else {
                    return Err(format!("REG_SEND {} without a name", m.control));
                };
                if let Some(p) = self.whereis(*name).and_then(|p| self.lookup(p)) {
                    p.deliver(Message::Term(payload()?));
                } else {
                    tracing::debug!(name = %name, "a message from {} to an unregistered name is dropped", conn.peer);
                }
            }
            ALIAS_SEND | ALIAS_SEND_TT => {
                let Some(Term::Ref(alias)) = c.get(2) else {
                    return Err(format!("ALIAS_SEND {} without an alias", m.control));
                };
                let target = self.dist.aliases.read().get(alias).copied();
                if let Some(p) = target.and_then(|p| self.lookup(p)) {
                    p.deliver(Message::Term(payload()?));
                }
            }
            LINK => {
                arity(3)?;
                let (from, to) = (pid(1)?, pid(2)?);
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
                let (from, to) = (pid(1)?, pid(2)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().links.remove(&from);
                }
            }
            UNLINK_ID => {
                arity(4)?;
                let (from, to) = (pid(2)?, pid(3)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().links.remove(&from);
                }
                let _ = conn.send(
                    op(
                        UNLINK_ID_ACK,
                        [c[1].clone(), Term::Pid(to), Term::Pid(from)],
                    ),
                    None,
                );
            }
            UNLINK_ID_ACK => {}
            EXIT | EXIT_TT | PAYLOAD_EXIT | PAYLOAD_EXIT_TT => {
                let (from, to) = (pid(1)?, pid(2)?);
                let reason = match *tag {
                    EXIT => c.get(3).cloned(),
                    EXIT_TT => c.get(4).cloned(),
                    _ => m.payload.clone(),
                }
                .ok_or_else(|| format!("exit {} without a reason", m.control))?;
                if let Some(p) = self.lookup(to) {
                    let mut st = p.state.lock();
                    if st.links.remove(&from).is_some() {
                        p.exit_signal(from, Reason::from_term(reason), false);
                    }
                }
            }
            EXIT2 | EXIT2_TT | PAYLOAD_EXIT2 | PAYLOAD_EXIT2_TT => {
                let (from, to) = (pid(1)?, pid(2)?);
                let reason = match *tag {
                    EXIT2 => c.get(3).cloned(),
                    EXIT2_TT => c.get(4).cloned(),
                    _ => m.payload.clone(),
                }
                .ok_or_else(|| format!("exit {} without a reason", m.control))?;
                if let Some(p) = self.lookup(to) {
                    p.exit_signal(from, Reason::from_term(reason), true);
                }
            }
            MONITOR_P => {
                arity(4)?;
                let from = pid(1)?;
                let Some(Term::Ref(reference)) = c.get(3) else {
                    return Err(format!("MONITOR_P {} without a reference", m.control));
                };
                let (target, object) = match &c[2] {
                    Term::Pid(p) => (Some(*p), Term::Pid(*p)),
                    Term::Atom(n) => (self.whereis(*n), Term::Atom(*n)),
                    other => return Err(format!("MONITOR_P of {other}")),
                };
                let watched = target.and_then(|p| self.lookup(p)).is_some_and(|p| {
                    let mut st = p.state.lock();
                    if st.alive {
                        st.monitored_by.insert_new(
                            *reference,
                            MonitorEntry {
                                reference: *reference,
                                other: from,
                                object: object.clone(),
                            },
                        );
                    }
                    st.alive
                });
                if !watched {
                    let me = target.unwrap_or(Pid::new(self.name, 0, 0, self.creation()));
                    self.dist_signal(me, from, Signal::Down(object, *reference), Reason::NoProc);
                }
            }
            DEMONITOR_P => {
                let Some(Term::Ref(reference)) = c.get(3) else {
                    return Err(format!("DEMONITOR_P {} without a reference", m.control));
                };
                let target = match &c[2] {
                    Term::Pid(p) => Some(*p),
                    Term::Atom(n) => self.whereis(*n),
                    _ => None,
                };
                if let Some(p) = target.and_then(|p| self.lookup(p)) {
                    p.state.lock().monitored_by.remove(reference);
                }
            }
            MONITOR_P_EXIT | PAYLOAD_MONITOR_P_EXIT => {
                let to = pid(2)?;
                let Some(Term::Ref(reference)) = c.get(3) else {
                    return Err(format!("monitor exit {} without a reference", m.control));
                };
                let reason = if *tag == MONITOR_P_EXIT {
                    c.get(4).cloned()
                } else {
                    m.payload.clone()
                }
                .ok_or_else(|| format!("monitor exit {} without a reason", m.control))?;
                if let Some(p) = self.lookup(to) {
                    let mut st = p.state.lock();
                    if let Some(entry) = st.monitors.remove(reference) {
                        p.deliver(Message::Down {
                            reference: *reference,
                            object: entry.object,
                            reason: Reason::from_term(reason),
                        });
                    }
                }
            }
            GROUP_LEADER => {
                let (from, to) = (pid(1)?, pid(2)?);
                if let Some(p) = self.lookup(to) {
                    p.state.lock().group_leader = Some(from);
                }
            }
            SPAWN_REQUEST | SPAWN_REQUEST_TT => {
                self.spawn_request(conn, c, payload()?)?;
            }
            SPAWN_REPLY | SPAWN_REPLY_TT => {
                tracing::debug!("a spawn reply nobody asked for: {}", m.control);
            }
            other => {
                tracing::warn!(node = %conn.peer, "ignored control message with operation {other}: {}", m.control);
            }
        }
        Ok(())
    }
}
