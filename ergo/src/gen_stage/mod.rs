//! GenStage: stages that exchange events with back-pressure, as Elixir's
//! `GenStage` (1.3) defines them, and on its wire protocol, so Rust and
//! Elixir stages form one pipeline across nodes.
//!
//! A stage is a producer (emits events as consumers ask for them), a
//! consumer (takes events and asks for more as it handles them) or a
//! producer_consumer (both). Consumers subscribe to producers; each
//! subscription carries demand: the consumer asks for up to `max_demand`
//! events and asks again once it has handled down to `min_demand`, so a
//! producer never runs ahead of its slowest consumer by more than the
//! consumers asked. A producer shares its events among its consumers by
//! its [`Dispatcher`]; what no consumer asked for waits in its buffer
//! (`buffer_size`, 10,000 by default).
//!
//! Implement [`GenStage`] (or let `#[gen_stage]` write it) and start the
//! stage with [`Node::start_stage`] or [`Context::start_stage_link`]; the
//! [`StageRef`] they return subscribes, calls and casts with the stage's
//! own types. A stage is a GenServer ([`Stage`]), so it goes under a
//! supervisor as one (`ChildSpec::server::<Stage<S>>`) and answers `sys`.
//!
//! Between stages of one node events move as a `Vec` of the event type,
//! never encoded. To and from other nodes they are the terms Elixir's
//! GenStage sends. The connection reads a batch for a consumer of this node
//! straight into the consumer's event type, without building the events'
//! terms, for event types that can be read so (integers, strings, binaries,
//! atoms, floats, booleans, [`Term`] and `#[derive(Term)]` types); other
//! types are decoded as terms and converted. A batch that does not decode
//! cancels that subscription with a reason naming what was expected.
//!
//! # What lives here
//!
//! - this file: the [`GenStage`] trait, [`Init`], the context's stage
//!   operations and the typed client [`StageRef`];
//! - `stage`: [`Stage`], the GenServer that runs a stage (subscriptions,
//!   demand, the buffer, producer_consumer's queue);
//! - `protocol`: the messages and their terms; [`SubscribeOptions`];
//! - `dispatcher`: [`Dispatcher`] and the three of GenStage;
//! - `buffer`: the producer's buffer;
//! - `consumer_supervisor`: [`ConsumerSupervisor`], a consumer that starts
//!   a child per event.
//!
//! `cargo run --example gen_stage` runs a producer, a producer_consumer
//! and two consumers.

mod buffer;
mod consumer_supervisor;
mod dispatcher;
pub(crate) mod protocol;
mod stage;

pub use buffer::BufferKeep;
pub use consumer_supervisor::{
    ConsumerSupervisor, ConsumerSupervisorCall, ConsumerSupervisorSpec, StartChild,
};
pub use dispatcher::{
    BroadcastDispatcher, DemandDispatcher, Dispatcher, HashFn, Outlet, PartitionDispatcher,
};
pub use protocol::{CancelMode, NoEvents, Selector, SubscribeOptions, Subscription};
pub use stage::{Stage, StageCall, StageCast, StageReply, SubscribeRequest};

use std::future::Future;
use std::time::Duration;

use ergo_etf::{Atom, FromTerm, Ref, Term, ToTerm};

use crate::gen_server::{CallError, DEFAULT_CALL_TIMEOUT, Flow, Reply, ServerContext, ServerRef};
use crate::message::Message;
use crate::node::Node;
use crate::process::{Context, Dest};
use crate::reason::Reason;

/// A stage's context: the GenServer context of the [`Stage`] running it,
/// with the stage's own operations ([`StageContext::emit`] and the rest).
pub type StageContext<S> = ServerContext<Stage<S>>;

/// The kind of stage at the other end of a subscription, as
/// `handle_subscribe` is told.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// The other stage is a producer: this stage subscribed to it.
    Producer,
    /// The other stage is a consumer that subscribed to this one.
    Consumer,
}

/// How a consumer asks for events on a subscription.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Demand {
    /// The stage asks by `max_demand` and `min_demand` (the default).
    Automatic,
    /// The stage asks itself, with [`StageContext::ask`].
    Manual,
}

/// Whether a producer passes demand on to `handle_demand` as it comes
/// (`forward`, the default) or keeps it until told to forward
/// (`accumulate`), as `GenStage.demand/2` sets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DemandMode {
    /// Demand reaches `handle_demand` as it comes.
    Forward,
    /// Demand is kept, and events emitted are held, until `Forward`.
    Accumulate,
}

impl DemandMode {
    fn name(self) -> &'static str {
        match self {
            DemandMode::Forward => "forward",
            DemandMode::Accumulate => "accumulate",
        }
    }
}

/// How a subscription ended, as `handle_cancel` is told.
#[derive(Clone, Debug, PartialEq)]
pub enum Cancel {
    /// The other stage cancelled it (`{cancel, Reason}`).
    Cancel(Reason),
    /// The other stage went down (`{down, Reason}`).
    Down(Reason),
}

impl Cancel {
    /// The reason, whichever way it ended.
    pub fn reason(&self) -> &Reason {
        match self {
            Cancel::Cancel(r) | Cancel::Down(r) => r,
        }
    }
}

/// Which kind of stage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StageKind {
    /// Emits events.
    Producer,
    /// Takes events and emits events.
    ProducerConsumer,
    /// Takes events.
    Consumer,
}

impl StageKind {
    fn name(self) -> &'static str {
        match self {
            StageKind::Producer => "producer",
            StageKind::ProducerConsumer => "producer_consumer",
            StageKind::Consumer => "consumer",
        }
    }
}

/// What `init` returns: the stage's state, its kind and options (GenStage's
/// `{:producer, state, opts}` and the others).
pub struct Init<S: GenStage> {
    pub(crate) state: S,
    pub(crate) kind: StageKind,
    pub(crate) dispatcher: Option<Box<dyn Dispatcher<S::Out>>>,
    /// `None`: the kind's default (10,000 for a producer, no limit for a
    /// producer_consumer); `Some(None)`: no limit.
    pub(crate) buffer_size: Option<Option<usize>>,
    pub(crate) buffer_keep: BufferKeep,
    pub(crate) demand: DemandMode,
    pub(crate) subscribe_to: Vec<(Dest, SubscribeOptions<S::In>)>,
    /// Options given to a kind that has none of them.
    pub(crate) misused: Vec<&'static str>,
}

impl<S: GenStage> Init<S> {
    fn new(state: S, kind: StageKind) -> Self {
        Init {
            state,
            kind,
            dispatcher: None,
            buffer_size: None,
            buffer_keep: BufferKeep::Last,
            demand: DemandMode::Forward,
            subscribe_to: Vec::new(),
            misused: Vec::new(),
        }
    }

    /// A producer.
    pub fn producer(state: S) -> Self {
        Self::new(state, StageKind::Producer)
    }

    /// A producer_consumer.
    pub fn producer_consumer(state: S) -> Self {
        Self::new(state, StageKind::ProducerConsumer)
    }

    /// A consumer.
    pub fn consumer(state: S) -> Self {
        Self::new(state, StageKind::Consumer)
    }

    /// The dispatcher ([`DemandDispatcher`] by default); producers and
    /// producer_consumers.
    pub fn dispatcher(mut self, d: impl Dispatcher<S::Out>) -> Self {
        if self.kind == StageKind::Consumer {
            self.misused.push("dispatcher");
        }
        self.dispatcher = Some(Box::new(d));
        self
    }

    /// At most `n` events wait in the buffer (`buffer_size`).
    pub fn buffer_size(mut self, n: usize) -> Self {
        if self.kind == StageKind::Consumer {
            self.misused.push("buffer_size");
        }
        self.buffer_size = Some(Some(n));
        self
    }

    /// No limit on the buffer (`buffer_size: :infinity`).
    pub fn buffer_unbounded(mut self) -> Self {
        if self.kind == StageKind::Consumer {
            self.misused.push("buffer_size");
        }
        self.buffer_size = Some(None);
        self
    }

    /// Which events a full buffer keeps (`buffer_keep`, `last` by default).
    pub fn buffer_keep(mut self, keep: BufferKeep) -> Self {
        if self.kind == StageKind::Consumer {
            self.misused.push("buffer_keep");
        }
        self.buffer_keep = keep;
        self
    }

    /// Starts with demand accumulated (`demand: :accumulate`); producers
    /// only.
    pub fn demand(mut self, mode: DemandMode) -> Self {
        if self.kind != StageKind::Producer {
            self.misused.push("demand");
        }
        self.demand = mode;
        self
    }

    /// Subscribes to the producer at `to` as the stage starts
    /// (`subscribe_to`); consumers and producer_consumers.
    pub fn subscribe_to(mut self, to: impl Into<Dest>, opts: SubscribeOptions<S::In>) -> Self {
        if self.kind == StageKind::Producer {
            self.misused.push("subscribe_to");
        }
        self.subscribe_to.push((to.into(), opts));
        self
    }

    /// Subscribes to the Rust producer `to` as the stage starts; its events
    /// must be this stage's.
    pub fn subscribe_to_stage<P>(self, to: &StageRef<P>, opts: SubscribeOptions<S::In>) -> Self
    where
        P: GenStage<Out = S::In>,
    {
        self.subscribe_to(to.dest(), opts)
    }
}

/// A GenStage: a producer, consumer or producer_consumer.
///
/// `In` is the type of the events the stage takes and `Out` of those it
/// emits ([`NoEvents`] where it takes or emits none). Events emitted from
/// any callback with [`StageContext::emit`] go to the consumers (or the
/// buffer) when the callback returns. Calls and casts are a GenServer's.
///
/// # Examples
///
/// ```
/// use ergo::gen_stage::{GenStage, Init, NoEvents, StageContext, SubscribeOptions, Subscription};
/// use ergo::gen_server::Flow;
/// use ergo::{Node, Reason};
///
/// struct Counter(i64);
///
/// impl GenStage for Counter {
///     type Args = i64;
///     type In = NoEvents;
///     type Out = i64;
///     type Call = ();
///     type Reply = ();
///     type Cast = ();
///
///     async fn init(start: i64, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
///         Ok(Init::producer(Counter(start)))
///     }
///
///     async fn handle_demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
///         ctx.emit(self.0..self.0 + demand as i64);
///         self.0 += demand as i64;
///         Flow::Continue
///     }
/// }
///
/// struct Printer;
///
/// impl GenStage for Printer {
///     type Args = ();
///     type In = i64;
///     type Out = NoEvents;
///     type Call = ();
///     type Reply = ();
///     type Cast = ();
///
///     async fn init(_: (), _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
///         Ok(Init::consumer(Printer))
///     }
///
///     async fn handle_events(&mut self, events: Vec<i64>, _from: Subscription, _ctx: &mut StageContext<Self>) -> Flow {
///         assert!(events.windows(2).all(|w| w[1] == w[0] + 1));
///         Flow::Continue
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = Node::builder("demo@localhost").start().unwrap();
/// let counter = node.start_stage::<Counter>(0).await.unwrap();
/// let printer = node.start_stage::<Printer>(()).await.unwrap();
/// printer.subscribe(&counter, SubscribeOptions::new().max_demand(10)).await.unwrap();
/// # }
/// ```
pub trait GenStage: Send + Sized + 'static {
    /// What `init` is started with.
    type Args: Send + 'static;
    /// The events the stage takes.
    type In: FromTerm + Send + 'static;
    /// The events the stage emits.
    type Out: ToTerm + Send + 'static;
    /// The requests `handle_call` serves.
    type Call: FromTerm + Send + 'static;
    /// The replies to calls.
    type Reply: ToTerm + Send + 'static;
    /// The requests `handle_cast` serves.
    type Cast: FromTerm + Send + 'static;

    /// Builds the state and says which kind of stage this is. An `Err`
    /// ends the process with that reason, and the start returns it.
    fn init(
        args: Self::Args,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Result<Init<Self>, Reason>> + Send;

    /// A producer's consumers asked for `demand` more events
    /// (`handle_demand/2`). By default the stage stops: a producer must
    /// have it.
    fn handle_demand(
        &mut self,
        demand: usize,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (demand, ctx);
        async { Flow::Stop(undefined("handle_demand")) }
    }

    /// Events from the producer of subscription `from`
    /// (`handle_events/3`). By default the stage stops: a consumer must
    /// have it.
    fn handle_events(
        &mut self,
        events: Vec<Self::In>,
        from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (events, from, ctx);
        async { Flow::Stop(undefined("handle_events")) }
    }

    /// A subscription begins (`handle_subscribe/4`): `role` is the other
    /// stage's, `opts` the options the consumer gave. A consumer may take
    /// [`Demand::Manual`] and ask itself. By default, automatic.
    fn handle_subscribe(
        &mut self,
        role: Role,
        opts: &[(Atom, Term)],
        from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Result<Demand, Reason>> + Send {
        let _ = (role, opts, from, ctx);
        async { Ok(Demand::Automatic) }
    }

    /// A subscription ended (`handle_cancel/3`); a consumer then stops or
    /// not by the subscription's [`CancelMode`]. By default nothing.
    fn handle_cancel(
        &mut self,
        cancel: Cancel,
        from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (cancel, from, ctx);
        async { Flow::Continue }
    }

    /// Serves a call. By default the stage stops with `{bad_call, Type}`.
    /// To reply later, take the caller with
    /// [`ServerContext::reply_later`] and answer with
    /// [`crate::gen_server::From::reply_with`].
    fn handle_call(
        &mut self,
        request: Self::Call,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Reply<Self::Reply>> + Send {
        let _ = (request, ctx);
        let reason = crate::gen_server::unhandled::<Self::Call>("bad_call");
        async move { Reply::Stop(reason, None) }
    }

    /// Serves a cast. By default the stage stops with `{bad_cast, Type}`.
    fn handle_cast(
        &mut self,
        request: Self::Cast,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (request, ctx);
        let reason = crate::gen_server::unhandled::<Self::Cast>("bad_cast");
        async move { Flow::Stop(reason) }
    }

    /// Any other message. By default it is logged.
    fn handle_info(
        &mut self,
        message: Message,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        tracing::warn!(stage = %ctx.pid(), %message, "unexpected message");
        async { Flow::Continue }
    }

    /// The state as operators see it (see
    /// [`crate::gen_server::GenServer::format_status`]); private by default.
    fn format_status(&self) -> Option<Term> {
        None
    }

    /// The buffer dropped `excess` events (`format_discarded/2`): `true`
    /// (the default) logs GenStage's warning.
    fn format_discarded(&mut self, excess: usize) -> bool {
        let _ = excess;
        true
    }

    /// Runs as the stage stops (not when it is killed).
    fn terminate(
        &mut self,
        reason: &Reason,
        ctx: &mut StageContext<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }
}

fn undefined(callback: &str) -> Reason {
    Reason::other(Term::tuple([
        Term::atom("undefined_callback"),
        Term::atom(callback),
    ]))
}

impl<S: GenStage> ServerContext<Stage<S>> {
    /// Emits `events`: they go to the consumers (or the buffer) when the
    /// callback returns, in order.
    pub fn emit(&mut self, events: impl IntoIterator<Item = S::Out>) {
        let slot = self
            .ext
            .get_or_insert_with(|| Box::new(Vec::<S::Out>::new()));
        if let Some(v) = slot.downcast_mut::<Vec<S::Out>>() {
            v.extend(events);
        }
    }

    /// Takes what the last callback emitted.
    pub(crate) fn take_emitted(&mut self) -> Vec<S::Out> {
        match self.ext.as_mut() {
            Some(slot) => slot
                .downcast_mut::<Vec<S::Out>>()
                .map(std::mem::take)
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Asks the producer of `from` for `n` more events (`GenStage.ask/3`),
    /// for a subscription in [`Demand::Manual`].
    pub fn ask(&self, from: Subscription, n: usize) {
        if n == 0 {
            return;
        }
        let msg = protocol::AskMsg {
            consumer: self.pid(),
            tag: from.tag,
            n,
        };
        let _ = self.send_noconnect(from.stage, msg);
    }

    /// Cancels the subscription `from` on its producer
    /// (`GenStage.cancel/3`); the consumer then reacts by the
    /// subscription's cancel mode when the producer confirms.
    pub fn cancel(&self, from: Subscription, reason: impl ToTerm) {
        let msg = protocol::cancel_term(
            protocol::GEN_PRODUCER,
            self.pid(),
            from.tag,
            reason.to_term(),
        );
        let _ = self.send_noconnect(from.stage, msg);
    }

    /// Subscribes this stage to the producer at `to` once the callback
    /// returns (`GenStage.async_subscribe/2` to itself).
    pub fn async_subscribe(&self, to: impl Into<Dest>, opts: SubscribeOptions<S::In>) {
        let req = SubscribeRequest {
            current: None,
            to: to.into(),
            opts,
        };
        let _ = self.send_local(
            self.pid(),
            crate::gen_server::cast_message::<Stage<S>>(StageCast::Subscribe(req)),
        );
    }

    /// This stage's client.
    pub fn stage(&self) -> StageRef<S> {
        StageRef {
            server: self.server(),
        }
    }
}

impl<R: ToTerm + Send + 'static> crate::gen_server::From<StageReply<R>> {
    /// Replies to a stage's caller (taken with
    /// [`ServerContext::reply_later`]). `false` if it no longer waits.
    pub fn reply_with(self, reply: R) -> bool {
        self.reply(StageReply::User(reply))
    }
}

/// A typed handle to a stage, on this node or another: subscribes it,
/// calls and casts it.
pub struct StageRef<S: GenStage> {
    server: ServerRef<Stage<S>>,
}

impl<S: GenStage> Clone for StageRef<S> {
    fn clone(&self) -> Self {
        StageRef {
            server: self.server.clone(),
        }
    }
}

impl<S: GenStage> std::fmt::Debug for StageRef<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StageRef<{}>({:?})",
            std::any::type_name::<S>(),
            self.server.dest()
        )
    }
}

/// The subscription could not be made.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeError {
    /// The options are invalid (`{error, {bad_opts, Message}}`).
    BadOpts(String),
    /// The stage is a producer (`{error, not_a_consumer}`).
    NotAConsumer,
    /// The call failed.
    Call(CallError),
    /// Any other reply.
    Other(Term),
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscribeError::BadOpts(m) => write!(f, "bad subscription options: {m}"),
            SubscribeError::NotAConsumer => f.write_str("a producer cannot subscribe"),
            SubscribeError::Call(e) => write!(f, "the subscribe call failed: {e}"),
            SubscribeError::Other(t) => write!(f, "unexpected reply to subscribe: {t}"),
        }
    }
}

impl std::error::Error for SubscribeError {}

impl<S: GenStage> StageRef<S> {
    /// A handle to the stage at `dest` (a pid, a local name, or `{Name,
    /// Node}`).
    pub fn at(node: &Node, dest: impl Into<Dest>) -> Self {
        StageRef {
            server: ServerRef::at(node, dest),
        }
    }

    /// The stage's pid, where known (see [`ServerRef::pid`]).
    pub fn pid(&self) -> Option<crate::Pid> {
        self.server.pid()
    }

    /// Where the handle points.
    pub fn dest(&self) -> Dest {
        self.server.dest()
    }

    /// The underlying GenServer handle.
    pub fn server(&self) -> &ServerRef<Stage<S>> {
        &self.server
    }

    /// Subscribes this stage to the Rust producer `to` and waits until the
    /// subscription is made (`GenStage.sync_subscribe/3`); gives its
    /// reference. The producer's events must be this stage's: anything else
    /// does not compile.
    pub async fn subscribe<P>(
        &self,
        to: &StageRef<P>,
        opts: SubscribeOptions<S::In>,
    ) -> Result<Ref, SubscribeError>
    where
        P: GenStage<Out = S::In>,
        S::Call: ToTerm,
    {
        self.subscribe_to(to.dest(), opts).await
    }

    /// Subscribes this stage to the producer at `to`, of any kind (an
    /// Elixir stage, `{Name, Node}`), and waits
    /// (`GenStage.sync_subscribe/3`).
    pub async fn subscribe_to(
        &self,
        to: impl Into<Dest>,
        opts: SubscribeOptions<S::In>,
    ) -> Result<Ref, SubscribeError>
    where
        S::Call: ToTerm,
    {
        self.sync_subscribe(None, to.into(), opts).await
    }

    /// Cancels subscription `tag` with `reason` and subscribes again to
    /// `to` with `opts` (`GenStage.sync_resubscribe/4`).
    pub async fn resubscribe(
        &self,
        tag: Ref,
        reason: impl ToTerm,
        to: impl Into<Dest>,
        opts: SubscribeOptions<S::In>,
    ) -> Result<Ref, SubscribeError>
    where
        S::Call: ToTerm,
    {
        self.sync_subscribe(Some((tag, reason.to_term())), to.into(), opts)
            .await
    }

    async fn sync_subscribe(
        &self,
        current: Option<(Ref, Term)>,
        to: Dest,
        opts: SubscribeOptions<S::In>,
    ) -> Result<Ref, SubscribeError>
    where
        S::Call: ToTerm,
    {
        let req = StageCall::Subscribe(SubscribeRequest { current, to, opts });
        let reply = self
            .server
            .call_map::<Term>(req, DEFAULT_CALL_TIMEOUT, StageReply::into_term_reply)
            .await
            .map_err(SubscribeError::Call)?;
        match reply.as_tuple() {
            Some([ok, Term::Ref(r)]) if ok.is_atom("ok") => Ok(*r),
            Some([e, Term::Atom(a)]) if e.is_atom("error") && a.as_str() == "not_a_consumer" => {
                Err(SubscribeError::NotAConsumer)
            }
            Some([e, Term::Tuple(b)])
                if e.is_atom("error") && b.len() == 2 && b[0].is_atom("bad_opts") =>
            {
                Err(SubscribeError::BadOpts(match &b[1] {
                    Term::Binary(m) => String::from_utf8_lossy(m).into_owned(),
                    t => t.to_string(),
                }))
            }
            _ => Err(SubscribeError::Other(reply)),
        }
    }

    /// Subscribes without waiting (`GenStage.async_subscribe/2`).
    pub fn async_subscribe(&self, to: impl Into<Dest>, opts: SubscribeOptions<S::In>)
    where
        S::Cast: ToTerm,
    {
        self.server.cast(StageCast::Subscribe(SubscribeRequest {
            current: None,
            to: to.into(),
            opts,
        }));
    }

    /// Sets a producer's demand mode (`GenStage.demand/2`).
    pub fn set_demand(&self, mode: DemandMode)
    where
        S::Cast: ToTerm,
    {
        self.server.cast(StageCast::Demand(mode));
    }

    /// A producer's demand mode (`GenStage.demand/1`).
    pub async fn demand(&self) -> Result<DemandMode, CallError>
    where
        S::Call: ToTerm,
    {
        let t = self
            .server
            .call_map::<Term>(
                StageCall::Demand,
                DEFAULT_CALL_TIMEOUT,
                StageReply::into_term_reply,
            )
            .await?;
        match t.as_atom().map(|a| a.as_str()) {
            Some("accumulate") => Ok(DemandMode::Accumulate),
            Some("forward") => Ok(DemandMode::Forward),
            _ => Err(CallError::BadReply(format!("not a demand mode: {t}"))),
        }
    }

    /// How many events wait in a producer's buffer
    /// (`GenStage.estimate_buffered_count/2`).
    pub async fn estimate_buffered_count(&self) -> Result<usize, CallError>
    where
        S::Call: ToTerm,
    {
        let t = self
            .server
            .call_map::<Term>(
                StageCall::EstimateBufferedCount,
                DEFAULT_CALL_TIMEOUT,
                StageReply::into_term_reply,
            )
            .await?;
        t.as_i64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| CallError::BadReply(format!("not a count: {t}")))
    }

    /// Queues `msg` to reach the producer's `handle_info` once the events
    /// buffered now have gone to consumers, and waits for it to be queued
    /// (`GenStage.sync_info/3`).
    pub async fn sync_info(&self, msg: impl ToTerm) -> Result<(), CallError>
    where
        S::Call: ToTerm,
    {
        self.server
            .call_map::<Term>(
                StageCall::Info(msg.to_term()),
                DEFAULT_CALL_TIMEOUT,
                StageReply::into_term_reply,
            )
            .await
            .map(|_| ())
    }

    /// Like [`StageRef::sync_info`], without waiting
    /// (`GenStage.async_info/2`).
    pub fn async_info(&self, msg: impl ToTerm)
    where
        S::Cast: ToTerm,
    {
        self.server.cast(StageCast::Info(msg.to_term()));
    }

    /// Calls the stage and waits up to 5 seconds.
    pub async fn call(&self, request: S::Call) -> Result<S::Reply, CallError>
    where
        S::Call: ToTerm,
        S::Reply: FromTerm,
    {
        self.call_timeout(request, DEFAULT_CALL_TIMEOUT).await
    }

    /// Calls the stage and waits up to `timeout`.
    pub async fn call_timeout(
        &self,
        request: S::Call,
        timeout: Duration,
    ) -> Result<S::Reply, CallError>
    where
        S::Call: ToTerm,
        S::Reply: FromTerm,
    {
        self.server
            .call_map(StageCall::User(request), timeout, |r| match r {
                StageReply::User(r) => Some(r),
                StageReply::Term(_) => None,
            })
            .await
    }

    /// Casts to the stage.
    pub fn cast(&self, request: S::Cast)
    where
        S::Cast: ToTerm,
    {
        self.server.cast(StageCast::User(request));
    }

    /// Stops the stage with `reason` and waits until it has stopped.
    pub async fn stop(&self, reason: Reason) -> Result<(), CallError> {
        self.server.stop(reason).await
    }

    /// Waits until the stage ends; gives its reason.
    pub async fn wait(&self) -> Reason {
        self.server.wait().await
    }
}

impl Node {
    /// Starts the stage `S` and waits for its `init` (`GenStage.start/3`).
    pub async fn start_stage<S: GenStage>(&self, args: S::Args) -> Result<StageRef<S>, Reason> {
        let server = self.start_server::<Stage<S>>(args).await?;
        Ok(StageRef { server })
    }

    /// Starts the stage `S` registered as `name`.
    pub async fn start_stage_named<S: GenStage>(
        &self,
        name: impl Into<Atom>,
        args: S::Args,
    ) -> Result<StageRef<S>, Reason> {
        let server = self.start_server_named::<Stage<S>>(name, args).await?;
        Ok(StageRef { server })
    }
}

impl Context {
    /// Starts the stage `S` linked to this process
    /// (`GenStage.start_link/3`).
    pub async fn start_stage_link<S: GenStage>(
        &self,
        args: S::Args,
    ) -> Result<StageRef<S>, Reason> {
        let server = self.start_server_link::<Stage<S>>(args).await?;
        Ok(StageRef { server })
    }

    /// Like [`Context::start_stage_link`], registered as `name`.
    pub async fn start_stage_link_named<S: GenStage>(
        &self,
        name: impl Into<Atom>,
        args: S::Args,
    ) -> Result<StageRef<S>, Reason> {
        let server = self.start_server_link_named::<Stage<S>>(name, args).await?;
        Ok(StageRef { server })
    }
}

impl<S: GenStage> std::fmt::Debug for Init<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Init")
            .field("kind", &self.kind)
            .field("buffer_size", &self.buffer_size)
            .field("buffer_keep", &self.buffer_keep)
            .field("demand", &self.demand)
            .field("subscribe_to", &self.subscribe_to)
            .finish_non_exhaustive()
    }
}
