//! The typed client of a GenServer, [`ServerRef`], and why a call fails.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ergo_etf::{Atom, FromTerm, Pid, Term, ToTerm};
use tokio::sync::oneshot;

use super::{DEFAULT_CALL_TIMEOUT, GenServer, LocalCall, LocalCast, StopRequest};
use crate::message::Message;
use crate::node::Node;
use crate::process::{Dest, Pcb};
use crate::reason::Reason;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// No reply within the timeout.
    Timeout(Duration),
    /// The server does not exist (`noproc`).
    NoProc,
    /// The server ended before replying, with this reason.
    Exited(Reason),
    /// The server dropped the request's [`From`] without replying.
    NoReply,
    /// The server's node cannot be reached, or the connection to it went
    /// down during the call (`noconnection`).
    NoConnection,
    /// The reply came, but does not decode into the type the call
    /// expects; the text says what was expected and what came.
    BadReply(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout(d) => write!(f, "no reply within {d:?}"),
            CallError::NoProc => f.write_str("the server does not exist (noproc)"),
            CallError::Exited(r) => write!(f, "the server exited with reason {r} before replying"),
            CallError::NoReply => f.write_str("the server dropped the request without replying"),
            CallError::NoConnection => {
                f.write_str("the server's node cannot be reached (noconnection)")
            }
            CallError::BadReply(why) => write!(f, "the reply does not decode: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A handle to a GenServer of type `S`: call and cast with its own request
/// types, wherever the server runs. Cheap to clone.
///
/// A handle names the server by pid, by a name registered on this node, or
/// by `{Name, Node}` ([`ServerRef::at`]). To a server of this node, the
/// request and the reply move as Rust values, with no encoding; to a
/// server on another node (a Rust `#[gen_server]` or any Erlang or Elixir
/// server that speaks the same terms), the request is encoded once as a
/// term and the reply decoded into the type the call expects.
pub struct ServerRef<S: GenServer> {
    node: Node,
    dest: Dest,
    /// The server's control block, for a handle by pid to a process of
    /// this node.
    pcb: Option<Arc<Pcb>>,
    _server: PhantomData<fn() -> S>,
}

impl<S: GenServer> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        ServerRef {
            node: self.node.clone(),
            dest: self.dest,
            pcb: self.pcb.clone(),
            _server: PhantomData,
        }
    }
}

impl<S: GenServer> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerRef<{}>({})",
            std::any::type_name::<S>(),
            self.dest
        )
    }
}

/// Where a call goes, worked out for one call.
enum Route {
    Local(Arc<Pcb>),
    Remote,
    Missing,
}

impl<S: GenServer> ServerRef<S> {
    /// A handle to the server `pid` (on this node or another; not checked
    /// until used).
    pub fn new(node: &Node, pid: Pid) -> ServerRef<S> {
        ServerRef::at(node, pid)
    }

    /// A handle to the server at `dest`: a pid, a name registered on this
    /// node, or `{Name, Node}`. A name is looked up at each call, as
    /// `gen_server:call/2` does.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ergo::{Atom, Node, ServerRef};
    /// # use ergo::gen_server::{GenServer, ServerContext};
    /// # struct Echo;
    /// # impl GenServer for Echo {
    /// #     type Args = (); type Call = i64; type Reply = i64; type Cast = ();
    /// #     async fn init(_: (), _: &mut ServerContext<Self>) -> Result<Self, ergo::Reason> { Ok(Echo) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let node = Node::builder("demo@localhost").start().unwrap();
    /// let by_name: ServerRef<Echo> = ServerRef::at(&node, (Atom::from("echo"), Atom::from("other@host")));
    /// # let _ = by_name;
    /// # }
    /// ```
    pub fn at(node: &Node, dest: impl Into<Dest>) -> ServerRef<S> {
        let dest = dest.into();
        let pcb = match dest {
            Dest::Pid(p) => node.inner().lookup(p),
            _ => None,
        };
        ServerRef {
            node: node.clone(),
            dest,
            pcb,
            _server: PhantomData,
        }
    }

    /// The server's pid, when the handle names it by pid or by a name
    /// registered on this node now; `None` for a name on another node.
    pub fn pid(&self) -> Option<Pid> {
        match self.dest {
            Dest::Pid(p) => Some(p),
            Dest::Name(n) => self.node.inner().whereis(n),
            Dest::NameOn(n, node) if node == self.node.name() => self.node.inner().whereis(n),
            Dest::NameOn(..) => None,
        }
    }

    /// Where the handle points.
    pub fn dest(&self) -> Dest {
        self.dest
    }

    /// Where this call goes.
    fn route(&self) -> Route {
        if let Some(pcb) = &self.pcb {
            return Route::Local(pcb.clone());
        }
        let inner = self.node.inner();
        let local = match self.dest {
            Dest::Pid(p) if p.node == inner.name => Some(p),
            Dest::Pid(_) => return Route::Remote,
            Dest::Name(n) => inner.whereis(n),
            Dest::NameOn(n, node) if node == inner.name => inner.whereis(n),
            Dest::NameOn(..) => return Route::Remote,
        };
        match local.and_then(|p| inner.lookup(p)) {
            Some(pcb) => Route::Local(pcb),
            None => Route::Missing,
        }
    }

    /// Calls the server and waits up to [`DEFAULT_CALL_TIMEOUT`] for the
    /// reply.
    pub fn call(&self, request: S::Call) -> impl Future<Output = Result<S::Reply, CallError>> + '_
    where
        S::Call: ToTerm,
        S::Reply: FromTerm,
    {
        self.call_map(request, DEFAULT_CALL_TIMEOUT, Some)
    }

    /// Calls the server and waits up to `timeout` for the reply.
    pub fn call_timeout(
        &self,
        request: S::Call,
        timeout: Duration,
    ) -> impl Future<Output = Result<S::Reply, CallError>> + '_
    where
        S::Call: ToTerm,
        S::Reply: FromTerm,
    {
        self.call_map(request, timeout, Some)
    }

    /// Calls the server and gives its reply as a `T`: from a server of
    /// this node, the reply `local` picks out of [`GenServer::Reply`]
    /// (`None` if it is not the expected one); from another node's server,
    /// the reply term decoded into `T`. This is what the clients that
    /// `#[gen_server]` generates call, one reply type per request.
    pub fn call_map<T: FromTerm>(
        &self,
        request: S::Call,
        timeout: Duration,
        local: impl FnOnce(S::Reply) -> Option<T>,
    ) -> impl Future<Output = Result<T, CallError>>
    where
        S::Call: ToTerm,
    {
        CallMap {
            server: self,
            timeout,
            request: Some(request),
            local: Some(local),
            routed: None,
            reply: None,
            boxed: None,
        }
    }

    /// Sends a call's request: into the mailbox of the server of this
    /// node, moved as Rust values, or to another node's server.
    #[inline(always)]
    fn send_call<T: FromTerm>(&self, request: S::Call, timeout: Duration) -> Sent<'_, S::Reply, T>
    where
        S::Call: ToTerm,
    {
        // A handle by pid to a process of this node needs no lookup.
        let routed = match &self.pcb {
            Some(_) => None,
            None => match self.route() {
                Route::Local(pcb) => Some(pcb),
                Route::Missing => return Sent::NoProc,
                Route::Remote => return Sent::Remote(self.remote_call(request, timeout)),
            },
        };
        let Some(pcb) = routed.as_ref().or(self.pcb.as_ref()) else {
            return Sent::NoProc;
        };
        // Moved as Rust values. The request's box is allocated before the
        // reply channel is made, so that the two are written straight into
        // it: made first, they were stored to the stack around the
        // allocation's call and read back in one wider load, which stalls.
        let slot = Box::<LocalCall<S::Call, S::Reply>>::new_uninit();
        let (tx, rx) = oneshot::channel();
        let msg = Message::local_boxed(Box::write(slot, LocalCall { request, reply: tx }));
        if !pcb.deliver(msg) {
            // Ended before the call: `noproc`, whatever it ended with, as
            // `gen_server:call/2` exits.
            return Sent::NoProc;
        }
        Sent::Local(routed, rx)
    }

    /// The call to another node's server, boxed so that a local call's
    /// future is not the size of a remote one's (it was 696 bytes, written
    /// and moved on every call).
    fn remote_call<T: FromTerm>(&self, request: S::Call, timeout: Duration) -> BoxedCall<'_, T>
    where
        S::Call: ToTerm,
    {
        let inner = self.node.inner();
        let call = inner.call_term(inner.system_pid(), self.dest, request, timeout);
        Box::pin(async move {
            let reply = call.await?;
            T::from_owned_term(reply).map_err(|e| CallError::BadReply(e.to_string()))
        })
    }

    /// Waits until the server has ended and gives its exit reason
    /// (`noproc` if there is none, `noconnection` if its node goes away).
    pub async fn wait(&self) -> Reason {
        match self.route() {
            Route::Local(pcb) => pcb.on_exit().await.unwrap_or(Reason::NoProc),
            Route::Missing => Reason::NoProc,
            Route::Remote => {
                let inner = self.node.inner();
                inner.watch(self.dest.target(inner.name)).await
            }
        }
    }

    /// Casts to the server (`gen_server:cast/2`): never fails, as in OTP.
    pub fn cast(&self, request: S::Cast)
    where
        S::Cast: ToTerm,
    {
        if let Some(pcb) = &self.pcb {
            pcb.deliver(Message::local(LocalCast(request)));
            return;
        }
        match self.route() {
            Route::Local(pcb) => {
                pcb.deliver(Message::local(LocalCast(request)));
            }
            Route::Missing => {}
            Route::Remote => {
                let msg = Term::tuple([Term::Atom(Atom::GEN_CAST), request.into_term()]);
                let _ = self.node.send(self.dest, msg);
            }
        }
    }

    /// Stops the server with `reason`, waiting until it has ended (as
    /// `gen_server:stop/2`); `terminate` runs first. Servers of this node
    /// only: another node's server answers [`CallError::NoProc`].
    pub async fn stop(&self, reason: Reason) -> Result<(), CallError> {
        let Route::Local(pcb) = self.route() else {
            return Err(CallError::NoProc);
        };
        let exited = pcb.on_exit();
        if !pcb.deliver(Message::local(StopRequest(reason))) {
            return Err(CallError::NoProc);
        }
        let _ = exited.await;
        Ok(())
    }
}

/// [`ServerRef::call_map`]'s future, written out: a local call polls it
/// twice (to send and wait, then to take the reply), and an `async fn`
/// took a state machine's entry and exit, and a larger future to make and
/// drop, on each call. Its parts are fields of their own rather than
/// states of an enum: setting a field drops only what it held, where
/// moving between states called the whole enum's drop.
struct CallMap<'a, S: GenServer, T, L> {
    server: &'a ServerRef<S>,
    timeout: Duration,
    /// Until it is sent, on the first poll.
    request: Option<S::Call>,
    /// Taken with the reply.
    local: Option<L>,
    /// The server of this node, when the handle does not hold it.
    routed: Option<Arc<Pcb>>,
    /// The wait for a local server's reply.
    reply: Option<crate::deadline::Timed<oneshot::Receiver<S::Reply>>>,
    /// A call to another node's server, or the wait for the exit of a
    /// server that dropped the request.
    boxed: Option<BoxedCall<'a, T>>,
}

// Nothing in a `CallMap` is pinned in place: the boxed future is pinned in
// its box, the reply's wait is `Unpin`, and `local` is never polled.
impl<S: GenServer, T, L> Unpin for CallMap<'_, S, T, L> {}

impl<'a, S: GenServer, T: FromTerm, L: FnOnce(S::Reply) -> Option<T>> Future
    for CallMap<'a, S, T, L>
where
    S::Call: ToTerm,
{
    type Output = Result<T, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(request) = this.request.take() {
            match this.server.send_call(request, this.timeout) {
                Sent::Local(routed, rx) => {
                    this.routed = routed;
                    this.reply = Some(crate::deadline::within(this.timeout, rx));
                }
                Sent::Remote(call) => this.boxed = Some(call),
                Sent::NoProc => return Poll::Ready(Err(CallError::NoProc)),
            }
        }
        if let Some(reply) = &mut this.reply {
            match std::task::ready!(Pin::new(&mut *reply).poll(cx)) {
                Some(Ok(r)) => {
                    let local = this
                        .local
                        .take()
                        .expect("a call's future polled after it completed");
                    return Poll::Ready(local(r).ok_or(CallError::NoReply));
                }
                Some(Err(_)) => {
                    // The request was dropped unanswered. If the server is
                    // ending (a callback crashed, say), say why; a server
                    // that lives on and dropped it leaves the caller to its
                    // timeout, as in OTP.
                    let deadline = reply
                        .deadline()
                        .unwrap_or_else(|| tokio::time::Instant::now() + this.timeout);
                    this.reply = None;
                    let Some(pcb) = this.routed.take().or_else(|| this.server.pcb.clone()) else {
                        return Poll::Ready(Err(CallError::NoReply));
                    };
                    this.boxed = Some(Box::pin(async move {
                        match crate::deadline::timeout_at(deadline, pcb.on_exit()).await {
                            Some(Ok(reason)) => Err(CallError::Exited(reason)),
                            _ => Err(CallError::NoReply),
                        }
                    }));
                }
                None => {
                    this.reply = None;
                    tracing::debug!(server = %this.server.dest, timeout = ?this.timeout, "call timed out");
                    return Poll::Ready(Err(CallError::Timeout(this.timeout)));
                }
            }
        }
        match &mut this.boxed {
            Some(call) => call.as_mut().poll(cx),
            None => panic!("a call's future polled after it completed"),
        }
    }
}

/// A call's remaining work, boxed (see [`CallMap`]).
type BoxedCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

/// What [`ServerRef::send_call`] did with a request.
enum Sent<'a, R, T> {
    /// In the mailbox of the server of this node (`Some` when the handle
    /// does not hold it); the reply comes on the receiver.
    Local(Option<Arc<Pcb>>, oneshot::Receiver<R>),
    /// To another node's server: the call.
    Remote(BoxedCall<'a, T>),
    /// No such server (or it ended before the call).
    NoProc,
}
