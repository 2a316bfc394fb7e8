//! The codec between [`Signal`]s and control messages: each signal for
//! another node is written here as its control tuple (the frequent ones in
//! the fixed shapes of [`crate::dist::codec::wire`]), and each control message a
//! peer sends is read here into a signal, which the node then routes like
//! any other. Nothing here changes a process: that is the process
//! module's work.
//!
//! `wire` below holds the frames themselves: the distribution header and
//! its atom cache, fragments, and the fixed shapes in which the frequent
//! messages are written and read without the general encoder.

pub(crate) mod wire;

use std::sync::Arc;

use ergo_etf::{Atom, Pid, Term};

use crate::dist::codec::wire::{Control, Ctl, Incoming, Payload, ProcId, WriteTerm};
use crate::dist::conn::{Closed, Conn};
use crate::dist::handshake::flags;
use crate::message::Message;
use crate::node::NodeInner;
use crate::process::Target;
use crate::process::signal::{Body, CallTag, Routed, Signal, SpawnRequest};
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

/// Whether the peer has the distribution flag `flag` (known once the
/// handshake is done; `false` before).
fn peer_has(conn: &Conn, flag: u64) -> bool {
    conn.info.get().is_some_and(|p| p.flags & flag != 0)
}

/// How a monitor control message names the watched process.
fn proc_id(t: Target) -> ProcId {
    match t {
        Target::Pid(p) => ProcId::Pid(p),
        Target::Name(n, _) => ProcId::Name(n),
    }
}

/// A frame to write: a control message and its payload.
type Frame<'a> = (Ctl<'a>, Option<Payload<'a>>);

/// Writes `signal` to `conn` as its control message (and payload).
pub(crate) fn write(conn: &Arc<Conn>, signal: &Signal) -> Result<(), Closed> {
    with_frame(conn, signal, |frame, deferred| {
        if deferred {
            conn.send_deferred(frame.0)
        } else {
            conn.send_frames(&[frame])
        }
    })
    .unwrap_or(Ok(()))
}

/// Writes two signals to `conn` in order, with one write (a call's monitor
/// and its request).
pub(crate) fn write_pair(conn: &Arc<Conn>, first: &Signal, second: &Signal) -> Result<(), Closed> {
    with_frame(conn, first, |a, _| {
        with_frame(conn, second, |b, _| conn.send_frames(&[a, b]))
            .unwrap_or_else(|| conn.send_frames(&[a]))
    })
    .unwrap_or_else(|| write(conn, second))
}

/// Writes a call's monitor and its request to `conn` with one write, as
/// [`write_pair`] does, the request by its own writer (no term is built
/// for it).
pub(crate) fn write_call(
    conn: &Arc<Conn>,
    monitor: &Signal,
    from: Pid,
    to: Target,
    tag: CallTag,
    request: &dyn WriteTerm,
) -> Result<(), Closed> {
    let control = match to {
        Target::Pid(to) => Ctl::SendSender { from, to },
        Target::Name(name, _) => Ctl::RegSend { from, name },
    };
    let call = (control, Some(Payload::CallOf { from, tag, request }));
    with_frame(conn, monitor, |a, _| conn.send_frames(&[a, call]))
        .unwrap_or_else(|| conn.send_frames(&[call]))
}

/// Gives `f` the frame `signal` is written as, and whether it may wait for
/// company (see `Conn::send_deferred`); `None`, without calling `f`, for a
/// signal the peer cannot take (a message to an alias, for a peer without
/// aliases: dropped, as a message to an inactive alias is).
fn with_frame<R>(
    conn: &Conn,
    signal: &Signal,
    f: impl for<'x> FnOnce(Frame<'x>, bool) -> R,
) -> Option<R> {
    Some(match signal {
        &Signal::Send { from, to, ref body } => {
            let control = match to {
                Target::Pid(to) => Ctl::SendSender { from, to },
                Target::Name(name, _) => Ctl::RegSend { from, name },
            };
            with_body(body, from, |payload| f((control, Some(payload)), false))
        }
        &Signal::AliasSend {
            from,
            alias,
            ref body,
        } => {
            if !peer_has(conn, flags::ALIAS) && conn.info.get().is_some() {
                return None;
            }
            let control = Ctl::AliasSend { from, alias };
            with_body(body, from, |payload| f((control, Some(payload)), false))
        }
        &Signal::Link { from, to } => {
            let c = [Term::Int(LINK), Term::Pid(from), Term::Pid(to)];
            f((Ctl::Terms(&c), None), false)
        }
        &Signal::Unlink { id, from, to } => {
            if peer_has(conn, flags::UNLINK_ID) || conn.info.get().is_none() {
                let c = [
                    Term::Int(UNLINK_ID),
                    Term::Int(id as i64),
                    Term::Pid(from),
                    Term::Pid(to),
                ];
                f((Ctl::Terms(&c), None), false)
            } else {
                let c = [Term::Int(UNLINK), Term::Pid(from), Term::Pid(to)];
                f((Ctl::Terms(&c), None), false)
            }
        }
        &Signal::UnlinkAck { id, from, to } => {
            let c = [
                Term::Int(UNLINK_ID_ACK),
                Term::Int(id as i64),
                Term::Pid(from),
                Term::Pid(to),
            ];
            f((Ctl::Terms(&c), None), false)
        }
        &Signal::Exit {
            from,
            to,
            ref reason,
            link,
        } => {
            // (Borrowed: a reason may be large, an `erpc` result.)
            let reason = reason.as_term();
            let (from, to) = (Term::Pid(from), Term::Pid(to));
            let (op, payload_op) = if link {
                (EXIT, PAYLOAD_EXIT)
            } else {
                (EXIT2, PAYLOAD_EXIT2)
            };
            if peer_has(conn, flags::EXIT_PAYLOAD) {
                let c = [Term::Int(payload_op), from, to];
                f((Ctl::Terms(&c), Some(Payload::Term(&reason))), false)
            } else {
                let c = [Term::Int(op), from, to, reason.into_owned()];
                f((Ctl::Terms(&c), None), false)
            }
        }
        &Signal::Monitor {
            from,
            target,
            reference,
        } => {
            let control = Ctl::Monitor {
                op: MONITOR_P as u8,
                from,
                to: proc_id(target),
                reference,
            };
            f((control, None), true)
        }
        &Signal::Demonitor {
            from,
            target,
            reference,
        } => {
            let control = Ctl::Monitor {
                op: DEMONITOR_P as u8,
                from,
                to: proc_id(target),
                reference,
            };
            f((control, None), true)
        }
        &Signal::Down {
            watched,
            to,
            reference,
            ref reason,
        } => {
            let reason = reason.as_term();
            let (watched, to, r) = (watched.proc_term(), Term::Pid(to), Term::Ref(reference));
            if peer_has(conn, flags::EXIT_PAYLOAD) {
                let c = [Term::Int(PAYLOAD_MONITOR_P_EXIT), watched, to, r];
                f((Ctl::Terms(&c), Some(Payload::Term(&reason))), false)
            } else {
                let c = [
                    Term::Int(MONITOR_P_EXIT),
                    watched,
                    to,
                    r,
                    reason.into_owned(),
                ];
                f((Ctl::Terms(&c), None), false)
            }
        }
        &Signal::GroupLeader { leader, to } => {
            let c = [Term::Int(GROUP_LEADER), Term::Pid(leader), Term::Pid(to)];
            f((Ctl::Terms(&c), None), false)
        }
        Signal::SpawnRequest(r) => {
            let mut opts = Vec::new();
            if r.link {
                opts.push(Term::atom("link"));
            }
            if r.monitor {
                opts.push(Term::atom("monitor"));
            }
            let c = [
                Term::Int(SPAWN_REQUEST),
                Term::Ref(r.id),
                Term::Pid(r.from),
                Term::Pid(r.group_leader),
                Term::tuple([
                    Term::Atom(r.module),
                    Term::Atom(r.function),
                    Term::Int(r.args.len() as i64),
                ]),
                Term::List(opts),
            ];
            let args = Term::List(r.args.clone());
            f((Ctl::Terms(&c), Some(Payload::Term(&args))), false)
        }
        &Signal::SpawnReply {
            id,
            to,
            flags,
            ref result,
        } => {
            let result = match result {
                Ok(pid) => Term::Pid(*pid),
                Err(reason) => reason.clone(),
            };
            let c = [
                Term::Int(SPAWN_REPLY),
                Term::Ref(id),
                Term::Pid(to),
                Term::Int(flags.into()),
                result,
            ];
            f((Ctl::Terms(&c), None), false)
        }
    })
}

/// Gives `f` a message signal's body as the payload it is written as.
fn with_body<R>(body: &Body, from: Pid, f: impl for<'x> FnOnce(Payload<'x>) -> R) -> R {
    match body {
        Body::Message(Message::Term(t)) => f(Payload::Term(t)),
        Body::Message(Message::Local(l)) if let Some(d) = l.direct() => f(Payload::Direct(d)),
        Body::Message(m) => {
            // Only messages with a term form are routed off the node.
            let owned = m.to_term().unwrap_or(Term::NIL);
            f(Payload::Term(&owned))
        }
        Body::Call { tag, request } => f(Payload::Call {
            from,
            tag: *tag,
            request,
        }),
        Body::Reply { tag, reply } => f(Payload::Reply { tag, reply }),
        Body::CallReply { tag, reply } => f(Payload::CallReply { tag: *tag, reply }),
    }
}

impl NodeInner {
    /// Hands a signal for a process of another node to the connection to
    /// that node (made now if there is none). A link or monitor that
    /// crosses is noted in the connection's index, so that the
    /// connection's loss fires it.
    pub(crate) fn dist_route(self: &Arc<Self>, signal: Signal) -> Routed {
        let node = signal.node();
        let Some(conn) = self.connection(node) else {
            return Routed::Unreachable;
        };
        let crossing = match &signal {
            Signal::Link { from, .. } | Signal::Monitor { from, .. } => Some(*from),
            Signal::SpawnRequest(r) if r.link || r.monitor => Some(r.from),
            _ => None,
        };
        if let Some(pid) = crossing
            && pid.node == self.name
            && pid != self.system_pid()
        {
            self.index_on(&conn, pid);
        }
        match write(&conn, &signal) {
            Ok(()) => Routed::Done,
            Err(Closed) => Routed::Unreachable,
        }
    }

    /// Reads a message from `conn`'s peer into a signal and routes it. An
    /// error closes the connection.
    pub(crate) fn dist_incoming(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        m: &mut Incoming,
    ) -> Result<(), String> {
        let _reading = crate::dist::Reading::from(conn);
        let signal = match self.decode(conn, m)? {
            Some(s) => s,
            None => return Ok(()),
        };
        if signal.node() != self.name {
            tracing::debug!(node = %conn.peer, "dropped a signal for another node: {signal:?}");
            return Ok(());
        }
        // A peer speaks for its own processes only: a signal that names a
        // sender elsewhere (which this node would answer, or connect to) is
        // refused, and the connection with it.
        if let Some(p) = signal.sender()
            && p.node != conn.peer
        {
            return Err(format!(
                "a signal from {p}, a process of another node than {}: {signal:?}",
                conn.peer
            ));
        }
        let name = match &signal {
            Signal::Send {
                to: Target::Name(n, _),
                ..
            } => Some(*n),
            _ => None,
        };
        if self.route(signal) == Routed::NoProc
            && let Some(name) = name
        {
            tracing::info!(name = %name, "a message from {} to an unregistered name is dropped", conn.peer);
        }
        Ok(())
    }

    /// The signal a control message from `conn`'s peer stands for; `None`
    /// for those that ask nothing of this node.
    fn decode(&self, conn: &Conn, m: &mut Incoming) -> Result<Option<Signal>, String> {
        // The sender of a message whose control message does not name one.
        let nobody = Pid::new(conn.peer, 0, 0, 0);
        let signal = match m.control {
            Control::Send { to } => {
                // A call names its caller in its envelope: its sender, when
                // it is a process of the peer's.
                let from = match m.call {
                    Some((caller, _)) if caller.node == conn.peer => caller,
                    _ => nobody,
                };
                Signal::Send {
                    from,
                    to: Target::Pid(to),
                    body: body(m, from, &to)?,
                }
            }
            Control::RegSend { from, name } => Signal::Send {
                from,
                to: Target::Name(name, self.name),
                body: body(m, from, &name)?,
            },
            Control::AliasSend { from, alias } => Signal::AliasSend {
                from,
                alias,
                body: body(m, from, &alias)?,
            },
            Control::Monitor {
                from,
                to,
                reference,
            } => Signal::Monitor {
                from,
                target: self.target_of(to),
                reference,
            },
            Control::Demonitor {
                from,
                to,
                reference,
            } => Signal::Demonitor {
                from,
                target: self.target_of(to),
                reference,
            },
            Control::Other(_) => {
                let mut carried = m.take_payload();
                let Control::Other(c) = &mut m.control else {
                    return Ok(None);
                };
                return decode_other(conn, self.name, c, &mut carried);
            }
        };
        Ok(Some(signal))
    }

    /// A monitored process as a control message names it to this node.
    fn target_of(&self, p: ProcId) -> Target {
        match p {
            ProcId::Pid(p) => Target::Pid(p),
            ProcId::Name(n) => Target::Name(n, self.name),
        }
    }
}

/// A message's payload as the body of its signal from `from`: a reply read
/// in a call's shape stays apart from its tag, and a call from `from` apart
/// from its envelope.
fn body(m: &mut Incoming, from: Pid, to: &dyn std::fmt::Display) -> Result<Body, String> {
    if let Some(msg) = m.typed.take() {
        return Ok(Body::Message(msg));
    }
    let tag = m.reply_tag.take();
    let call = m.call.take();
    let payload = m
        .payload
        .take()
        .ok_or_else(|| format!("a message to {to} without its payload"))?;
    match call {
        Some((caller, tag)) if caller == from => {
            return Ok(Body::Call {
                tag,
                request: payload,
            });
        }
        Some((caller, tag)) => {
            return Ok(Body::Message(Message::Term(wire::call_term(
                caller, tag, payload,
            ))));
        }
        None => {}
    }
    Ok(match tag {
        Some(tag) => Body::CallReply {
            tag,
            reply: payload,
        },
        None => Body::Message(Message::Term(payload)),
    })
}

/// The control messages [`Control`] has no fields for, from their
/// elements.
fn decode_other(
    conn: &Conn,
    local: Atom,
    c: &mut [Term],
    carried: &mut Option<Term>,
) -> Result<Option<Signal>, String> {
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
    let reference = |c: &[Term], i: usize| match c.get(i) {
        Some(Term::Ref(r)) => Ok(*r),
        _ => Err(format!(
            "control message {}: element {} is not a reference",
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
    let signal = match tag {
        SEND | SEND_TT | SEND_SENDER | SEND_SENDER_TT | REG_SEND | REG_SEND_TT | MONITOR_P
        | DEMONITOR_P | ALIAS_SEND | ALIAS_SEND_TT => {
            // Well-formed, these were read into their fields.
            return Err(format!("malformed control message {}", show(c)));
        }
        LINK => {
            arity(c, 3)?;
            Signal::Link {
                from: pid(c, 1)?,
                to: pid(c, 2)?,
            }
        }
        UNLINK => Signal::Unlink {
            id: 0,
            from: pid(c, 1)?,
            to: pid(c, 2)?,
        },
        UNLINK_ID => {
            arity(c, 4)?;
            let Term::Int(id) = c[1] else {
                return Err(format!("UNLINK_ID {} without an id", show(c)));
            };
            Signal::Unlink {
                id: id as u64,
                from: pid(c, 2)?,
                to: pid(c, 3)?,
            }
        }
        UNLINK_ID_ACK => return Ok(None),
        EXIT | EXIT_TT | PAYLOAD_EXIT | PAYLOAD_EXIT_TT | EXIT2 | EXIT2_TT | PAYLOAD_EXIT2
        | PAYLOAD_EXIT2_TT => {
            let (from, to) = (pid(c, 1)?, pid(c, 2)?);
            let reason = match tag {
                EXIT | EXIT2 => c.get_mut(3).map(std::mem::take),
                EXIT_TT | EXIT2_TT => c.get_mut(4).map(std::mem::take),
                _ => carried.take(),
            }
            .ok_or_else(|| format!("exit {} without a reason", show(c)))?;
            Signal::Exit {
                from,
                to,
                reason: Reason::from_term(reason),
                link: !matches!(tag, EXIT2 | EXIT2_TT | PAYLOAD_EXIT2 | PAYLOAD_EXIT2_TT),
            }
        }
        MONITOR_P_EXIT | PAYLOAD_MONITOR_P_EXIT => {
            let watched = match c.get(1) {
                Some(Term::Pid(p)) => Target::Pid(*p),
                Some(Term::Atom(n)) => Target::Name(*n, conn.peer),
                _ => return Err(format!("monitor exit {} names no process", show(c))),
            };
            let to = pid(c, 2)?;
            let reference = reference(c, 3)?;
            let reason = if tag == MONITOR_P_EXIT {
                c.get_mut(4).map(std::mem::take)
            } else {
                carried.take()
            }
            .ok_or_else(|| format!("monitor exit {} without a reason", show(c)))?;
            Signal::Down {
                watched,
                to,
                reference,
                reason: Reason::from_term(reason),
            }
        }
        GROUP_LEADER => Signal::GroupLeader {
            leader: pid(c, 1)?,
            to: pid(c, 2)?,
        },
        SPAWN_REQUEST | SPAWN_REQUEST_TT => {
            let args = payload(c)?;
            let (Some(Term::Tuple(mfa)), Some(opts)) = (c.get(4), c.get(5)) else {
                return Err(format!("malformed SPAWN_REQUEST {}", show(c)));
            };
            let (Some(Term::Atom(module)), Some(Term::Atom(function))) = (mfa.first(), mfa.get(1))
            else {
                return Err(format!(
                    "SPAWN_REQUEST {} without {{Module, Function, Arity}}",
                    show(c)
                ));
            };
            let opts = opts.as_list().unwrap_or_default();
            let link = opts.iter().any(|o| o.is_atom("link"));
            let monitor = opts.iter().any(|o| {
                o.is_atom("monitor")
                    || matches!(o, Term::Tuple(t) if t.first().is_some_and(|x| x.is_atom("monitor")))
            });
            let from = pid(c, 2)?;
            Signal::SpawnRequest(Box::new(SpawnRequest {
                id: reference(c, 1)?,
                from,
                group_leader: c.get(3).and_then(Term::as_pid).unwrap_or(from),
                node: local,
                module: *module,
                function: *function,
                args: args.as_list().map(<[Term]>::to_vec).unwrap_or_default(),
                link,
                monitor,
            }))
        }
        SPAWN_REPLY | SPAWN_REPLY_TT => {
            let Some(Term::Int(flags)) = c.get(3) else {
                return Err(format!("SPAWN_REPLY {} without flags", show(c)));
            };
            Signal::SpawnReply {
                id: reference(c, 1)?,
                to: pid(c, 2)?,
                flags: *flags as u8,
                result: match c.get_mut(4).map(std::mem::take) {
                    Some(Term::Pid(p)) => Ok(p),
                    Some(other) => Err(other),
                    None => return Err(format!("SPAWN_REPLY {} without a result", show(c))),
                },
            }
        }
        other => {
            tracing::warn!(node = %conn.peer, "ignored control message with operation {other}: {}", show(c));
            return Ok(None);
        }
    };
    Ok(Some(signal))
}
