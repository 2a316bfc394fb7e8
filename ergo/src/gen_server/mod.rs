//! The GenServer behaviour: a process that serves calls (request and reply)
//! and casts (one-way requests) against its state, as OTP's `gen_server`.
//!
//! Implement [`GenServer`] (or let `#[gen_server]` write it) and start the
//! server with [`Node::start_server`] or [`Context::start_server_link`]; both
//! wait until `init` has run, as `gen_server:start_link` does. The
//! [`ServerRef`] they return calls and casts with the server's own request
//! types: between processes of one node the request and reply move as Rust
//! values, with no encoding.
//!
//! Requests may also arrive as terms — `{'$gen_call', {Pid, Tag}, Request}`
//! and `{'$gen_cast', Request}`, as any Erlang process sends them. They are
//! converted into the server's request types; one that does not convert is
//! answered with `{error, {badcall, Why}}` (a call) or logged (a cast), and
//! the server goes on.
//!
//! A server ends when a callback returns [`Flow::Stop`] or [`Reply::Stop`],
//! when its parent (the process that started it linked) exits and the
//! server traps exits, or when a callback panics; `terminate` runs in each
//! of those cases, as in OTP. A `kill` ends it without `terminate`.
//!
//! # What lives here, and what it may touch
//!
//! - this file: the [`GenServer`] trait, its context, the server loop and
//!   the replies it sends;
//! - `client`: [`ServerRef`], the typed client of a server anywhere, and
//!   [`CallError`];
//! - `call`: a call by term (`gen_server:call`), with an alias and a
//!   monitor of the node's own, which serves [`Node::call`],
//!   [`crate::Context::call`] and the typed client's remote calls.
//!
//! It sends signals through the node's route; it never reaches into a
//! process's state or a connection.
//!
//! `cargo run --example genserver` runs a server callback by callback;
//! `cargo run --example interop_node` serves `counter` to Erlang nodes.

mod call;
mod client;

pub use client::{CallError, ServerRef};

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use ergo_etf::{Atom, FromTerm, Pid, Term, ToTerm};
use tokio::sync::oneshot;

use crate::message::Message;
use crate::node::Node;
use crate::process::signal::{Body, CallRequest, CallTag, Routed, Signal};
use crate::process::{Context, Target};
use crate::reason::Reason;

/// How long a call waits for its reply by default: 5 seconds, as
/// `gen_server:call/2`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a `handle_call` does with the request.
#[derive(Debug)]
pub enum Reply<R> {
    /// Reply now.
    Reply(R),
    /// No reply now. To reply later (possibly from another task), take the
    /// call's [`From`] with [`ServerContext::reply_later`] before returning;
    /// a call left with neither a reply nor a taker fails at once with
    /// [`CallError::NoReply`].
    NoReply,
    /// Stop the server with `reason`, replying `reply` first if given.
    Stop(Reason, Option<R>),
}

/// What the server does after a cast, an info message or a continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// Carry on (`{noreply, State}`).
    Continue,
    /// Stop with this reason (`{stop, Reason, State}`).
    Stop(Reason),
}

/// A GenServer: a process with state that serves calls and casts.
///
/// Every callback has a default except `init`. The request types convert
/// from terms ([`FromTerm`]) and replies to terms ([`ToTerm`]), so that the
/// server also answers Erlang processes; `#[derive(Term)]` gives both.
///
/// # Examples
///
/// ```
/// use ergo::gen_server::{GenServer, Reply, ServerContext};
/// use ergo::{Node, Reason, Term};
///
/// struct Counter(i64);
///
/// #[derive(Term, Debug)]
/// enum Req { Get, Add(i64) }
///
/// impl GenServer for Counter {
///     type Args = i64;
///     type Call = Req;
///     type Reply = i64;
///     type Cast = ();
///
///     async fn init(start: i64, _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
///         Ok(Counter(start))
///     }
///
///     async fn handle_call(&mut self, req: Req, _ctx: &mut ServerContext<Self>) -> Reply<i64> {
///         match req {
///             Req::Get => Reply::Reply(self.0),
///             Req::Add(n) => { self.0 += n; Reply::Reply(self.0) }
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = Node::builder("demo@localhost").start().unwrap();
/// let counter = node.start_server::<Counter>(10).await.unwrap();
/// assert_eq!(counter.call(Req::Add(5)).await.unwrap(), 15);
/// # }
/// ```
pub trait GenServer: Send + Sized + 'static {
    /// What `init` is started with.
    type Args: Send + 'static;
    /// The requests `handle_call` serves.
    type Call: FromTerm + Send + 'static;
    /// The replies to calls.
    type Reply: ToTerm + Send + 'static;
    /// The requests `handle_cast` serves.
    type Cast: FromTerm + Send + 'static;

    /// Builds the state. An `Err` ends the process with that reason, and the
    /// start returns it.
    fn init(
        args: Self::Args,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Result<Self, Reason>> + Send;

    /// Serves a call. By default the server stops with
    /// `{bad_call, Request}`, as an OTP server with no clause for it would
    /// crash.
    fn handle_call(
        &mut self,
        request: Self::Call,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Reply<Self::Reply>> + Send {
        let _ = (request, ctx);
        let reason = unhandled::<Self::Call>("bad_call");
        async move { Reply::Stop(reason, None) }
    }

    /// Serves a cast. By default the server stops with `{bad_cast, Request}`.
    fn handle_cast(
        &mut self,
        request: Self::Cast,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (request, ctx);
        let reason = unhandled::<Self::Cast>("bad_cast");
        async move { Flow::Stop(reason) }
    }

    /// Handles any other message (including `timeout` after an idle
    /// timeout, trapped exits from processes other than the parent, and
    /// monitors' `'DOWN'`s). By default it logs the message and carries on,
    /// as OTP's default `handle_info` does.
    fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        tracing::warn!(server = %ctx.pid(), %message, "unexpected message");
        async { Flow::Continue }
    }

    /// Runs what a callback asked for with [`ServerContext::continue_with`],
    /// before the next message (`handle_continue/2`).
    fn handle_continue(
        &mut self,
        value: Message,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (value, ctx);
        async { Flow::Continue }
    }

    /// The state as operators see it (`format_status`): what
    /// `sys:get_state/1` and `sys:get_status/1` from an Erlang node, the
    /// dashboard's process view and [`Node::server_state`] show. `None`, the
    /// default, keeps the state private: those answer that it is not shown.
    /// Leave out what must not leave the process (keys, passwords).
    fn format_status(&self) -> Option<Term> {
        None
    }

    /// Runs as the server stops (not when it is killed).
    fn terminate(
        &mut self,
        reason: &Reason,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }
}

/// The reason a behaviour stops with when a request of type `T` comes and
/// nothing handles it: `{Tag, <<"TypeName">>}` (`bad_call`, `bad_cast`), as
/// an OTP server with no clause for it would crash.
pub(crate) fn unhandled<T>(tag: &str) -> Reason {
    Reason::other(Term::tuple([
        Term::atom(tag),
        Term::binary(std::any::type_name::<T>()),
    ]))
}

/// The server's own context: everything a [`Context`] offers (through
/// `Deref`), plus the GenServer's reply handle, idle timeout and continue.
pub struct ServerContext<S: GenServer> {
    ctx: Context,
    parent: Option<Pid>,
    idle_timeout: Option<Duration>,
    next_continue: Option<Message>,
    /// A behaviour's own data: the events a GenStage callback emitted (a
    /// type), taken by the stage after the callback.
    pub(crate) ext: Option<Box<dyn std::any::Any + Send>>,
    /// Where the server's messages come from besides its mailbox: a
    /// connection's socket, read by the process itself while it waits.
    pub(crate) source: Option<Box<dyn Source>>,
    /// The source's turn to be looked at first (the last message came from
    /// the mailbox).
    source_next: bool,
    pending: Option<From<S::Reply>>,
}

/// Messages a server reads from something other than its mailbox (a
/// socket), polled whenever the server waits for its next message. The
/// mailbox and the source take turns when both have something, and the
/// source is not read while a callback runs: it is read only as fast as
/// the server handles what it gives.
pub(crate) trait Source: Send {
    /// The next message from the source, registering `cx`'s waker when
    /// there is none yet. A source that has nothing more to give stays
    /// `Pending`.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Message>;
}

impl<S: GenServer> fmt::Debug for ServerContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContext")
            .field("pid", &self.ctx.pid())
            .field("parent", &self.parent)
            .finish()
    }
}

impl<S: GenServer> std::ops::Deref for ServerContext<S> {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl<S: GenServer> std::ops::DerefMut for ServerContext<S> {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl<S: GenServer> ServerContext<S> {
    /// The next message for the server loop: from the mailbox, or from the
    /// server's [`Source`] if it has one. When both have something, they
    /// take turns, as messages and socket data share one mailbox in
    /// Erlang: neither a stream of calls nor a busy socket starves the
    /// other.
    ///
    /// A future of its own rather than an `async fn`: a server polls it
    /// twice for every message it waits for, and each poll of an `async
    /// fn` went through a state machine of its own (see [`NextMessage`]).
    fn next_message(&mut self) -> NextMessage<'_, S> {
        NextMessage(self)
    }

    /// [`ServerContext::next_message`]'s poll.
    #[inline(always)]
    fn poll_next_message(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Message> {
        if self.source.is_none() {
            return self.ctx.poll_receive(cx);
        }
        self.poll_with_source(cx)
    }

    /// [`ServerContext::poll_next_message`] for a server with a source.
    #[inline(never)]
    fn poll_with_source(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Message> {
        let Some(source) = self.source.as_mut() else {
            return self.ctx.poll_receive(cx);
        };
        let source_first = self.source_next;
        if source_first && let Poll::Ready(m) = source.poll_next(cx) {
            self.source_next = false;
            return Poll::Ready(m);
        }
        if let Poll::Ready(m) = self.ctx.poll_receive(cx) {
            self.source_next = true;
            return Poll::Ready(m);
        }
        if source_first {
            // Looked at already this poll, its waker registered.
            return Poll::Pending;
        }
        let polled = source.poll_next(cx);
        if polled.is_ready() {
            self.ctx.mark_running();
        }
        polled
    }

    /// After the current callback, wait at most `timeout` for the next
    /// message; if none comes, `handle_info` gets the atom `timeout` (the
    /// `Timeout` of `{noreply, State, Timeout}`). Applies to one wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = Some(timeout);
    }

    /// After the current callback, run `handle_continue(value)` before the
    /// next message (`{noreply, State, {continue, Value}}`).
    pub fn continue_with<T: ToTerm + Send + 'static>(&mut self, value: T) {
        self.next_continue = Some(Message::new(value));
    }

    /// Takes the current call's reply handle, to reply later (from this
    /// server or any other task) with [`From::reply`]; `handle_call` then
    /// returns [`Reply::NoReply`]. `None` outside `handle_call`.
    pub fn reply_later(&mut self) -> Option<From<S::Reply>> {
        self.pending.take()
    }

    /// The process that started this server linked, if any.
    pub fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// A typed handle to this server itself (to cast to itself, say).
    pub fn server(&self) -> ServerRef<S> {
        ServerRef::new(self.ctx.node(), self.ctx.pid())
    }
}

/// Where a call's reply goes. Hand it to another task to reply later
/// (`gen_server:reply/2`).
pub struct From<R> {
    to: ReplyTo<R>,
}

enum ReplyTo<R> {
    Local(oneshot::Sender<R>),
    /// Boxed, so that a `From` is two words: a local call's is moved
    /// through the server loop on every call.
    Term(Box<TermCaller>),
}

/// A caller that is answered with a term: `{Tag, Reply}` to `pid`.
struct TermCaller {
    node: Node,
    /// The server, which the reply comes from.
    server: Pid,
    pid: Pid,
    tag: CallerTag,
}

/// The tag of a call by term: a call's (a reference or `[alias | Ref]`),
/// as every `gen_server:call` makes it, or any other term.
enum CallerTag {
    Call(CallTag),
    Other(Term),
}

impl fmt::Display for CallerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallerTag::Call(t) => write!(f, "{}", t.to_term()),
            CallerTag::Other(t) => write!(f, "{t}"),
        }
    }
}

impl TermCaller {
    /// Sends the caller `reply`; `false` if it cannot be sent.
    fn answer(self, reply: Term) -> bool {
        match self.tag {
            CallerTag::Call(tag) => send_call_reply(&self.node, self.server, self.pid, tag, reply),
            CallerTag::Other(tag) => send_reply(&self.node, self.server, self.pid, tag, reply),
        }
    }
}

impl<R> fmt::Debug for From<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            ReplyTo::Local(_) => f.write_str("From(local)"),
            ReplyTo::Term(c) => write!(f, "From({}, {})", c.pid, c.tag),
        }
    }
}

impl<R: ToTerm + Send + 'static> From<R> {
    /// Sends the reply. Returns `false` if the caller is no longer waiting.
    pub fn reply(self, reply: R) -> bool {
        match self.to {
            ReplyTo::Local(tx) => tx.send(reply).is_ok(),
            ReplyTo::Term(c) => c.answer(reply.into_term()),
        }
    }
}

/// [`ServerContext::next_message`]'s future: its poll is inlined into the
/// server loop, so that the message is taken where the loop reads it (a
/// message handed back from a call was written out and read back at once
/// in wider loads, which stalls, on every message).
struct NextMessage<'a, S: GenServer>(&'a mut ServerContext<S>);

impl<S: GenServer> Future for NextMessage<'_, S> {
    type Output = Message;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Message> {
        self.0.poll_next_message(cx)
    }
}

/// A call from a process of this node, moved as Rust values.
struct LocalCall<C, R> {
    request: C,
    reply: oneshot::Sender<R>,
}

/// A cast from a process of this node.
struct LocalCast<C>(C);

/// A cast of `S` as a process of this node sends it (to put in a mailbox
/// directly).
pub(crate) fn cast_message<S: GenServer>(request: S::Cast) -> impl Send + 'static {
    LocalCast(request)
}

/// `ServerRef::stop`'s request.
struct StopRequest(Reason);

/// [`Node::server_state`]'s request.
struct StateRequest(oneshot::Sender<Option<Term>>);

/// What a server that keeps its state private shows in its place.
const STATE_NOT_SHOWN: &str = "state_not_shown";

impl Node {
    /// The state a GenServer of this node shows through
    /// [`GenServer::format_status`], asked of the server itself (between two
    /// of its callbacks). `None` if `pid` is not a GenServer here, keeps its
    /// state private, or does not answer within `timeout`.
    pub async fn server_state(&self, pid: Pid, timeout: Duration) -> Option<Term> {
        let info = self.process_info(pid)?;
        if info.behaviour?.name != "gen_server" {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.inner()
            .lookup(pid)?
            .deliver(Message::local(StateRequest(tx)));
        tokio::time::timeout(timeout, rx).await.ok()?.ok()?
    }

    /// Starts a GenServer `S` and waits for its `init`
    /// (`gen_server:start/3`).
    pub async fn start_server<S: GenServer>(&self, args: S::Args) -> Result<ServerRef<S>, Reason> {
        start::<S>(self, args, None, None).await
    }

    /// Starts a GenServer `S` registered as `name` (`gen_server:start/4`
    /// with `{local, Name}`); the name is taken before `init` runs.
    pub async fn start_server_named<S: GenServer>(
        &self,
        name: impl Into<Atom>,
        args: S::Args,
    ) -> Result<ServerRef<S>, Reason> {
        start::<S>(self, args, Some(name.into()), None).await
    }
}

impl Context {
    /// Starts a GenServer `S` linked to this process and waits for its
    /// `init` (`gen_server:start_link/3`).
    pub async fn start_server_link<S: GenServer>(
        &self,
        args: S::Args,
    ) -> Result<ServerRef<S>, Reason> {
        start::<S>(self.node(), args, None, Some(self)).await
    }

    /// Like [`Context::start_server_link`], registered as `name`.
    pub async fn start_server_link_named<S: GenServer>(
        &self,
        name: impl Into<Atom>,
        args: S::Args,
    ) -> Result<ServerRef<S>, Reason> {
        start::<S>(self.node(), args, Some(name.into()), Some(self)).await
    }
}

async fn start<S: GenServer>(
    node: &Node,
    args: S::Args,
    name: Option<Atom>,
    parent: Option<&Context>,
) -> Result<ServerRef<S>, Reason> {
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), Reason>>();
    let parent_pid = parent.map(Context::pid);
    let body =
        move |ctx: Context| serve::<S>(ServerContext::new(ctx, parent_pid), args, name, ready_tx);
    let pid = match parent {
        Some(p) => p.spawn_link(body),
        None => node.spawn(body),
    };
    match ready_rx.await {
        Ok(Ok(())) => Ok(ServerRef::at(node, pid)),
        Ok(Err(reason)) => Err(reason),
        // The process ended before answering (killed during init).
        Err(_) => Err(node
            .inner()
            .lookup(pid)
            .and_then(|p| p.exit_reason())
            .unwrap_or(Reason::Killed)),
    }
}

/// Runs a future, turning a panic into the reason it ends the process with.
pub(crate) async fn guarded<T>(fut: impl Future<Output = T>) -> Result<T, Reason> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Reason::from_panic(&*payload))),
        }
    })
    .await
}

/// What the server loop does with one incoming message.
enum Incoming<S: GenServer> {
    /// A call, its reply handle put in the context's `pending` already
    /// (written there where it is made: moved out with the request and in
    /// again, its two words were stored and read back in one wider load,
    /// which stalls, on every call).
    Call(S::Call),
    Cast(S::Cast),
    Info(Message),
    /// `{system, From, Request}`, as `sys` sends it.
    System(Term, From<S::Reply>),
    /// [`Node::server_state`].
    State(oneshot::Sender<Option<Term>>),
    ParentExit(Reason),
    Stop(Reason),
}

/// Sorts a message out; `None` for a request refused here (answered or
/// logged already).
fn classify<S: GenServer>(msg: Message, ctx: &mut ServerContext<S>) -> Option<Incoming<S>> {
    if let Message::Term(_) | Message::Exit { .. } = msg {
        return classify_other(msg, ctx);
    }
    let msg = match msg.downcast::<LocalCall<S::Call, S::Reply>>() {
        Ok(c) => {
            let LocalCall { request, reply } = c;
            ctx.pending = Some(From {
                to: ReplyTo::Local(reply),
            });
            return Some(Incoming::Call(request));
        }
        Err(m) => m,
    };
    let msg = match msg.downcast::<CallRequest>() {
        Ok(c) => return classify_call_request(c, ctx),
        Err(m) => m,
    };
    let msg = match msg.downcast::<LocalCast<S::Cast>>() {
        Ok(LocalCast(c)) => return Some(Incoming::Cast(c)),
        Err(m) => m,
    };
    let msg = match msg.downcast::<StopRequest>() {
        Ok(StopRequest(r)) => return Some(Incoming::Stop(r)),
        Err(m) => m,
    };
    let msg = match msg.downcast::<StateRequest>() {
        Ok(StateRequest(tx)) => return Some(Incoming::State(tx)),
        Err(m) => m,
    };
    classify_other(msg, ctx)
}

/// [`classify`] for a message that is not a Rust value of this server's.
fn classify_other<S: GenServer>(msg: Message, ctx: &mut ServerContext<S>) -> Option<Incoming<S>> {
    match &msg {
        Message::Exit { from, reason }
            if Some(*from) == ctx.parent || *from == ctx.node().system_pid() =>
        {
            Some(Incoming::ParentExit(reason.clone()))
        }
        Message::Term(Term::Tuple(t))
            if t.len() == 3 && t[0] == Term::Atom(Atom::GEN_CALL) && is_call_from(&t[1]) =>
        {
            classify_term_call::<S>(msg, ctx)
        }
        Message::Term(Term::Tuple(t))
            if t.len() == 3 && t[0] == Term::atom("system") && is_call_from(&t[1]) =>
        {
            let Message::Term(Term::Tuple(mut t)) = msg else {
                return None;
            };
            let from = term_from(&mut t[1], ctx)?;
            Some(Incoming::System(std::mem::take(&mut t[2]), from))
        }
        Message::Term(Term::Tuple(t)) if t.len() == 2 && t[0] == Term::Atom(Atom::GEN_CAST) => {
            let Message::Term(Term::Tuple(mut t)) = msg else {
                return None;
            };
            match S::Cast::from_owned_term(std::mem::take(&mut t[1])) {
                Ok(request) => Some(Incoming::Cast(request)),
                Err(e) => {
                    tracing::warn!(server = %ctx.pid(), name = ?ctx.registered_name(), error = %e, "refused a cast");
                    None
                }
            }
        }
        _ => Some(Incoming::Info(msg)),
    }
}

/// `{'$gen_call', {Pid, Tag}, Request}` (checked by the caller), the
/// request moved out of the message.
fn classify_term_call<S: GenServer>(
    msg: Message,
    ctx: &mut ServerContext<S>,
) -> Option<Incoming<S>> {
    let Message::Term(Term::Tuple(mut t)) = msg else {
        return None;
    };
    let from = term_from(&mut t[1], ctx)?;
    take_term_call(from, std::mem::take(&mut t[2]), ctx)
}

/// The call `request` by term from `from`, decoded into the server's calls;
/// `None` (the caller answered `{error, {badcall, Why}}`) when it is not
/// one of them.
fn take_term_call<S: GenServer>(
    from: From<S::Reply>,
    request: Term,
    ctx: &mut ServerContext<S>,
) -> Option<Incoming<S>> {
    match S::Call::from_owned_term(request) {
        Ok(request) => {
            ctx.pending = Some(from);
            Some(Incoming::Call(request))
        }
        Err(e) => {
            tracing::warn!(server = %ctx.pid(), name = ?ctx.registered_name(), error = %e, "refused a call");
            from.reply_term(Term::tuple([
                Term::atom("error"),
                Term::tuple([Term::atom("badcall"), Term::binary(e.to_string())]),
            ]));
            None
        }
    }
}

/// The reply handle of a `{Pid, Tag}` (checked by the caller), the tag
/// moved out.
fn term_from<S: GenServer>(f: &mut Term, ctx: &ServerContext<S>) -> Option<From<S::Reply>> {
    let Term::Tuple(f) = f else {
        return None;
    };
    let pid = f[0].as_pid()?;
    let tag = std::mem::take(&mut f[1]);
    let tag = match CallTag::of(&tag) {
        Some(t) => CallerTag::Call(t),
        None => CallerTag::Other(tag),
    };
    Some(caller_from(ctx, pid, tag))
}

/// Where the reply to a call by term from `pid` with `tag` goes.
fn caller_from<S: GenServer>(ctx: &ServerContext<S>, pid: Pid, tag: CallerTag) -> From<S::Reply> {
    From {
        to: ReplyTo::Term(Box::new(TermCaller {
            node: ctx.node().clone(),
            server: ctx.pid(),
            pid,
            tag,
        })),
    }
}

/// A call by term that came in its parts (see [`CallRequest`]): the
/// request decoded into the server's calls, as
/// [`classify_term_call`] does for the whole tuple.
fn classify_call_request<S: GenServer>(
    c: CallRequest,
    ctx: &mut ServerContext<S>,
) -> Option<Incoming<S>> {
    let CallRequest { from, tag, request } = c;
    let from = caller_from(ctx, from, CallerTag::Call(tag));
    take_term_call(from, request, ctx)
}

/// The answer to a `sys` request (`get_state`, `get_status`), as
/// `sys:handle_system_msg` gives it for a gen_server; others are answered
/// `{error, {unknown_system_msg, Request}}`.
fn system_reply<S: GenServer>(state: &S, request: Term, ctx: &ServerContext<S>) -> Term {
    let shown = || {
        state
            .format_status()
            .unwrap_or_else(|| Term::atom(STATE_NOT_SHOWN))
    };
    match &request {
        Term::Atom(a) if a.as_str() == "get_state" => shown(),
        Term::Atom(a) if a.as_str() == "get_status" => {
            let me = ctx.pid();
            // A server started unlinked is its own parent, as in `gen`.
            let parent = Term::Pid(ctx.parent.unwrap_or(me));
            let name = ctx
                .registered_name()
                .map_or_else(|| me.to_string(), |n| n.as_str().to_string());
            let header = Term::tuple([
                Term::atom("header"),
                Term::charlist(&format!("Status for generic server {name}")),
            ]);
            let data = Term::tuple([
                Term::atom("data"),
                Term::List(vec![
                    Term::tuple([Term::charlist("Status"), Term::atom("running")]),
                    Term::tuple([Term::charlist("Parent"), parent.clone()]),
                    Term::tuple([Term::charlist("Logged events"), Term::NIL]),
                ]),
            ]);
            let state = Term::tuple([
                Term::atom("data"),
                Term::List(vec![Term::tuple([Term::charlist("State"), shown()])]),
            ]);
            Term::tuple([
                Term::atom("status"),
                Term::Pid(me),
                Term::tuple([Term::atom("module"), Term::atom("gen_server")]),
                Term::List(vec![
                    Term::NIL,
                    Term::atom("running"),
                    parent,
                    Term::NIL,
                    Term::List(vec![header, data, state]),
                ]),
            ])
        }
        _ => Term::tuple([
            Term::atom("error"),
            Term::tuple([Term::atom("unknown_system_msg"), request]),
        ]),
    }
}

impl<R> From<R> {
    /// Replies with a raw term (to a term caller; a local caller has a typed
    /// channel and is left to the drop).
    fn reply_term(self, t: Term) {
        if let ReplyTo::Term(c) = self.to {
            c.answer(t);
        }
    }
}

/// Sends `{Tag, Reply}` from `server` to a caller: to the alias the tag
/// names (`[alias | Ref]`, OTP 24 and later; to another node as
/// `ALIAS_SEND`), or else to the caller's pid. Across nodes it is written
/// from its parts, without building the tuple. `false` if it cannot be
/// sent.
pub(crate) fn send_reply(node: &Node, server: Pid, pid: Pid, tag: Term, reply: Term) -> bool {
    match CallTag::of(&tag) {
        Some(t) => send_call_reply(node, server, pid, t, reply),
        None => {
            let signal = Signal::Send {
                from: server,
                to: Target::Pid(pid),
                body: Body::Reply { tag, reply },
            };
            node.inner().route(signal) != Routed::Unreachable
        }
    }
}

/// [`send_reply`] with a call's tag.
fn send_call_reply(node: &Node, server: Pid, pid: Pid, tag: CallTag, reply: Term) -> bool {
    let body = Body::CallReply { tag, reply };
    let signal = match tag {
        CallTag::Alias(alias) => Signal::AliasSend {
            from: server,
            alias,
            body,
        },
        CallTag::Ref(_) => Signal::Send {
            from: server,
            to: Target::Pid(pid),
            body,
        },
    };
    node.inner().route(signal) != Routed::Unreachable
}

/// Whether `t` is `{Pid, Tag}` of a `'$gen_call'`, where the reply goes
/// (Tag is a reference or, since OTP 24, `[alias | Ref]`).
fn is_call_from(t: &Term) -> bool {
    matches!(t, Term::Tuple(v) if v.len() == 2 && matches!(v[0], Term::Pid(_)))
}

impl<S: GenServer> ServerContext<S> {
    fn new(ctx: Context, parent: Option<Pid>) -> ServerContext<S> {
        ServerContext {
            ctx,
            parent,
            idle_timeout: None,
            next_continue: None,
            ext: None,
            source: None,
            source_next: false,
            pending: None,
        }
    }
}

/// A server's process: `init`, then the loop. Every `gen_server`'s task
/// holds this future, so it is an `async` block that uses what it captures
/// in place: an `async fn` moves its arguments into locals of its own and
/// keeps both (the server context twice, 712 bytes for the smallest server
/// where this is 528). The server context is made before the future, not
/// from a context the future would keep beside it.
#[allow(clippy::manual_async_fn)] // the layout above
fn serve<S: GenServer>(
    mut sctx: ServerContext<S>,
    args: S::Args,
    name: Option<Atom>,
    ready: oneshot::Sender<Result<(), Reason>>,
) -> impl Future<Output = Reason> + Send {
    async move {
        sctx.ctx.set_behaviour(|| crate::process::Behaviour {
            name: "gen_server",
            module: std::any::type_name::<S>(),
        });
        sctx.ctx.take_calls_apart();
        if let Some(name) = name
            && let Err(e) = sctx.register(name)
        {
            // `{already_started, Pid}` with the process holding the name, as
            // `gen_server:start/4` refuses; the reason in words otherwise.
            let holder = match e {
                crate::process::RegisterError::NameTaken(n) => sctx.node().whereis(n),
                _ => None,
            };
            let reason = Reason::other(Term::tuple([
                Term::atom("already_started"),
                holder.map_or_else(|| Term::binary(e.to_string()), Term::Pid),
            ]));
            let _ = ready.send(Err(reason.clone()));
            return reason;
        }
        let mut state = match guarded(S::init(args, &mut sctx)).await {
            Ok(Ok(state)) => state,
            Ok(Err(reason)) | Err(reason) => {
                let _ = ready.send(Err(reason.clone()));
                return reason;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            // Looked at before it is taken: most loops have none, and taking
            // it would copy the whole (empty) message out each time.
            if sctx.next_continue.is_some()
                && let Some(value) = sctx.next_continue.take()
            {
                match guarded(state.handle_continue(value, &mut sctx)).await {
                    Ok(Flow::Continue) => continue,
                    Ok(Flow::Stop(reason)) | Err(reason) => {
                        return stop(&mut state, &mut sctx, reason).await;
                    }
                }
            }
            let msg = match sctx.idle_timeout.take() {
                Some(d) => match crate::deadline::within_process(d, sctx.next_message()).await {
                    Some(m) => m,
                    None => Message::Term(Term::Atom(Atom::TIMEOUT)),
                },
                None => sctx.next_message().await,
            };
            let flow = match classify::<S>(msg, &mut sctx) {
                None => Ok(Flow::Continue),
                Some(Incoming::Call(request)) => {
                    // Pinned where it is made, so that the callback's future is
                    // not copied into the guard.
                    let outcome = {
                        let call = std::pin::pin!(state.handle_call(request, &mut sctx));
                        guarded(call).await
                    };
                    let from = sctx.pending.take();
                    match outcome {
                        Ok(Reply::Reply(r)) => {
                            if let Some(from) = from {
                                from.reply(r);
                            }
                            Ok(Flow::Continue)
                        }
                        Ok(Reply::NoReply) => Ok(Flow::Continue),
                        Ok(Reply::Stop(reason, reply)) => {
                            if let (Some(from), Some(r)) = (from, reply) {
                                from.reply(r);
                            }
                            Ok(Flow::Stop(reason))
                        }
                        Err(reason) => Err(reason),
                    }
                }
                Some(Incoming::Cast(request)) => {
                    guarded(state.handle_cast(request, &mut sctx)).await
                }
                Some(Incoming::System(request, from)) => {
                    from.reply_term(system_reply(&state, request, &sctx));
                    Ok(Flow::Continue)
                }
                Some(Incoming::State(tx)) => {
                    let _ = tx.send(state.format_status());
                    Ok(Flow::Continue)
                }
                Some(Incoming::Info(m)) => guarded(state.handle_info(m, &mut sctx)).await,
                Some(Incoming::ParentExit(reason)) | Some(Incoming::Stop(reason)) => {
                    Ok(Flow::Stop(reason))
                }
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(reason)) | Err(reason) => {
                    return stop(&mut state, &mut sctx, reason).await;
                }
            }
        }
    }
}

/// Runs `terminate` and gives the reason the process ends with (a panic in
/// `terminate` itself replaces it).
async fn stop<S: GenServer>(state: &mut S, sctx: &mut ServerContext<S>, reason: Reason) -> Reason {
    if reason != Reason::Normal && !reason.is_clean() {
        // As OTP's "** Generic server terminating" error report.
        tracing::error!(server = %sctx.pid(), name = ?sctx.registered_name(), %reason, "generic server terminating");
    }
    match guarded(state.terminate(&reason, sctx)).await {
        Ok(()) => reason,
        Err(panic) => panic,
    }
}
#[cfg(all(test, target_arch = "x86_64"))]
mod size_tests {
    //! What a `gen_server` costs in memory, kept from growing by accident:
    //! its task's future sits inside tokio's task cell of 640 bytes (the
    //! cell is 128-byte aligned on x86-64, 104 bytes of it tokio's own).
    use super::*;

    struct Counter(i64);

    impl GenServer for Counter {
        type Args = i64;
        type Call = i64;
        type Reply = i64;
        type Cast = ();

        async fn init(start: i64, _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
            Ok(Counter(start))
        }

        async fn handle_call(&mut self, n: i64, _ctx: &mut ServerContext<Self>) -> Reply<i64> {
            self.0 += n;
            Reply::Reply(self.0)
        }
    }

    /// A call's future is made and polled on every call, and kept by
    /// every caller waiting on one: the remote branch, several times the
    /// size of the local one, is boxed.
    #[tokio::test]
    async fn a_calls_future_is_the_size_of_a_local_call() {
        let node = crate::Node::builder("size_call@localhost").start().unwrap();
        let server = node.start_server::<Counter>(1).await.unwrap();
        let call = server.call(1);
        let size = std::mem::size_of_val(&call);
        assert!(size <= 192, "a call's future grew to {size} bytes");
        assert_eq!(call.await, Ok(2));
    }

    #[tokio::test]
    async fn a_small_servers_task_future_leaves_its_task_cell_at_640_bytes() {
        let node = crate::Node::builder("size@localhost").start().unwrap();
        let pcb = std::sync::Arc::new(crate::process::Pcb::new(node.system_pid(), None));
        let (ready, _) = oneshot::channel();
        let body =
            move |ctx: Context| serve::<Counter>(ServerContext::new(ctx, None), 1, None, ready);
        let size = std::mem::size_of_val(&crate::process::run(node.clone(), pcb, body));
        assert!(
            size <= 640 - 104,
            "a small gen_server's task future grew to {size} bytes"
        );
    }
}
