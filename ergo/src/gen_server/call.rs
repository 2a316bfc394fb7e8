//! `gen_server:call` by term, as OTP 24 and later make it: the server is
//! monitored for the call, and the request carries the tag
//! `[alias | Ref]`, whose reply goes to the alias `Ref`. The alias is
//! active only while the call waits, so a reply that comes after the
//! call gave up (a timeout) is dropped instead of landing in a mailbox.
//!
//! The call waits without a process of its own: its alias and its monitor
//! are kept by the node, and the reply or the `'DOWN'` is handed straight
//! to the waiting future. So the same call serves [`Node::call`], a
//! process's [`crate::Context::call`] and the typed clients of servers on
//! other nodes, with the caller's pid (or the node's system pid) in the
//! request, as the server expects to see it.

use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Pid, Ref, Term, ToTerm};
use tokio::sync::oneshot;

use crate::dist::codec;
use crate::dist::conn::Conn;
use crate::gen_server::CallError;
use crate::node::NodeInner;
use crate::process::signal::{AliasOwner, Body, CallEvent, CallTag, Routed, Signal};
use crate::process::{Dest, Target};
use crate::reason::Reason;

/// A call in flight: its alias is active and its server monitored until
/// it is dropped.
struct Pending<'a> {
    inner: &'a Arc<NodeInner>,
    alias: Ref,
    target: Target,
    /// The connection to the server's node, for a server there.
    conn: Option<Arc<Conn>>,
    /// The reply or the `'DOWN'` came: the alias is gone already.
    ended: bool,
}

impl<'a> Pending<'a> {
    /// An alias of the node's own for a call to (or a watch of) `target`,
    /// and the connection to `target`'s node when it is another; `None`
    /// when that node cannot be reached.
    fn open(
        inner: &'a Arc<NodeInner>,
        target: Target,
    ) -> Option<(Pending<'a>, oneshot::Receiver<CallEvent>)> {
        let node = target.node();
        let conn = if node != inner.name {
            Some(inner.connection(node)?)
        } else {
            None
        };
        let alias = inner.make_ref();
        let (tx, rx) = oneshot::channel();
        inner.aliases.write().insert(
            alias,
            AliasOwner::Call {
                tx,
                node,
                spawn: false,
            },
        );
        let pending = Pending {
            inner,
            alias,
            target,
            conn,
            ended: false,
        };
        Some((pending, rx))
    }

    /// Routes `signal`, straight to the connection when there is one.
    fn route(&self, signal: Signal) -> Routed {
        match &self.conn {
            Some(conn) => match codec::write(conn, &signal) {
                Ok(()) => Routed::Done,
                Err(_) => Routed::Unreachable,
            },
            None => self.inner.route(signal),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.inner.aliases.write().remove(&self.alias);
        }
        self.route(Signal::Demonitor {
            from: self.inner.system_pid(),
            target: self.target,
            reference: self.alias,
        });
    }
}

impl NodeInner {
    /// Calls the server `dest` with the term of `request` on behalf of
    /// `caller` (the pid the server sees in the request) and waits up to
    /// `timeout` for the reply. To a server on another node, a request
    /// whose type writes its term directly (a typed request, a borrowed
    /// term) is written without a term built for it.
    pub(crate) async fn call_term<R: ToTerm>(
        self: &Arc<Self>,
        caller: Pid,
        dest: Dest,
        request: R,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let target = dest.target(self.name);
        let (mut pending, rx) = Pending::open(self, target).ok_or(CallError::NoConnection)?;
        let alias = pending.alias;
        // The monitor and the request leave in one write.
        let monitor = Signal::Monitor {
            from: self.system_pid(),
            target,
            reference: alias,
        };
        let tag = CallTag::Alias(alias);
        let call = |request: R| Signal::Send {
            from: caller,
            to: target,
            body: Body::Call {
                tag,
                request: request.into_term(),
            },
        };
        let routed = match &pending.conn {
            Some(conn) => {
                let written = if R::WRITES_DIRECTLY {
                    codec::write_call(conn, &monitor, caller, target, tag, &request)
                } else {
                    codec::write_pair(conn, &monitor, &call(request))
                };
                match written {
                    Ok(()) => Routed::Done,
                    Err(_) => Routed::Unreachable,
                }
            }
            None => {
                let routed = self.route(monitor);
                if routed == Routed::Done {
                    self.route(call(request));
                }
                routed
            }
        };
        if routed == Routed::Unreachable {
            return Err(CallError::NoConnection);
        }
        let got = crate::deadline::within(timeout, rx).await;
        pending.ended = matches!(got, Some(Ok(_)));
        drop(pending);
        match got {
            Some(Ok(CallEvent::Reply(reply))) => Ok(reply),
            Some(Ok(CallEvent::Down(reason))) => Err(CallError::from_down(reason)),
            Some(Ok(CallEvent::SpawnFailed(_)) | Err(_)) => Err(CallError::NoReply),
            None => {
                tracing::debug!(server = %dest, ?timeout, "call timed out");
                Err(CallError::Timeout(timeout))
            }
        }
    }

    /// Waits until the process `target` has ended and gives its exit reason
    /// (`noproc` if there is none, `noconnection` if its node cannot be
    /// reached or goes away), through a monitor of the node's own.
    pub(crate) async fn watch(self: &Arc<Self>, target: Target) -> Reason {
        let Some((mut pending, rx)) = Pending::open(self, target) else {
            return Reason::NoConnection;
        };
        let alias = pending.alias;
        let routed = pending.route(Signal::Monitor {
            from: self.system_pid(),
            target,
            reference: alias,
        });
        if routed == Routed::Unreachable {
            return Reason::NoConnection;
        }
        let got = rx.await;
        pending.ended = got.is_ok();
        drop(pending);
        match got {
            Ok(CallEvent::Down(reason)) => reason,
            _ => Reason::NoProc,
        }
    }
}

impl CallError {
    /// The error a call ends with when its server's monitor fires.
    pub(crate) fn from_down(reason: Reason) -> CallError {
        match reason {
            Reason::NoProc => CallError::NoProc,
            Reason::NoConnection => CallError::NoConnection,
            r => CallError::Exited(r),
        }
    }
}
