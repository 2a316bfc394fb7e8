//! [`Stage`]: the GenServer that runs a [`GenStage`], following the
//! semantics of Elixir's `GenStage` module step by step: subscriptions
//! both ways with their monitors, automatic and manual demand, the
//! producer's buffer and demand modes, and the producer_consumer's queue of
//! events that wait for demand downstream.

use std::collections::{HashMap, VecDeque};

use ergo_etf::{Atom, ConvertError, FromTerm, Pid, Ref, Term, ToTerm};

use super::buffer::Buffer;
use super::dispatcher::{DemandDispatcher, Dispatcher, Outlet};
use super::protocol::{
    self, AskMsg, CancelMode, EventsMsg, GEN_CONSUMER, GEN_PRODUCER, SubscribeMsg,
    SubscribeOptions, Subscription, Wire,
};
use super::{
    BufferKeep, Cancel, Demand, DemandMode, GenStage, Init, Role, StageContext, StageKind,
};
use crate::gen_server::{Flow, GenServer, Reply};
use crate::message::Message;
use crate::process::Dest;
use crate::reason::Reason;

/// A subscription request: to whom, with which options, and a
/// subscription to cancel first (a resubscribe).
pub struct SubscribeRequest<E> {
    /// The subscription to cancel first, and the reason.
    pub current: Option<(Ref, Term)>,
    /// The producer.
    pub to: Dest,
    /// The options.
    pub opts: SubscribeOptions<E>,
}

impl<E: 'static> SubscribeRequest<E> {
    fn to_term(&self) -> Term {
        let current = match &self.current {
            Some((r, why)) => Term::tuple([Term::Ref(*r), why.clone()]),
            None => Term::atom("nil"),
        };
        Term::tuple([
            Term::atom("$subscribe"),
            current,
            protocol::dest_term(self.to),
            self.opts.keywords_term(),
        ])
    }

    fn from_parts(current: &Term, to: &Term, opts: &Term) -> Result<Self, ConvertError> {
        let current = match current {
            Term::Tuple(c) if c.len() == 2 => match &c[0] {
                Term::Ref(r) => Some((*r, c[1].clone())),
                _ => None,
            },
            _ => None,
        };
        let to = protocol::dest_of(to)
            .ok_or_else(|| ConvertError::new("a pid, a name or {Name, Node}", to))?;
        let opts = SubscribeOptions::from_keywords(opts)
            .map_err(|m| ConvertError::with_found("subscription options", m))?;
        Ok(SubscribeRequest { current, to, opts })
    }
}

/// The calls a stage serves: GenStage's own (`'$subscribe'`, `'$demand'`,
/// `'$estimate_buffered_count'`, `'$info'`) and the user's.
pub enum StageCall<S: GenStage> {
    /// A call of the stage's own type.
    User(S::Call),
    /// `sync_subscribe`.
    Subscribe(SubscribeRequest<S::In>),
    /// `demand/1`.
    Demand,
    /// `estimate_buffered_count`.
    EstimateBufferedCount,
    /// `sync_info`.
    Info(Term),
}

impl<S: GenStage> FromTerm for StageCall<S> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Tuple(v) if v.len() == 4 && v[0].is_atom("$subscribe") => Ok(
                StageCall::Subscribe(SubscribeRequest::from_parts(&v[1], &v[2], &v[3])?),
            ),
            Term::Atom(a) if a.as_str() == "$demand" => Ok(StageCall::Demand),
            Term::Atom(a) if a.as_str() == "$estimate_buffered_count" => {
                Ok(StageCall::EstimateBufferedCount)
            }
            Term::Tuple(v) if v.len() == 2 && v[0].is_atom("$info") => {
                Ok(StageCall::Info(v[1].clone()))
            }
            _ => S::Call::from_term(term).map(StageCall::User),
        }
    }
}

impl<S: GenStage> ToTerm for StageCall<S>
where
    S::Call: ToTerm,
{
    fn to_term(&self) -> Term {
        match self {
            StageCall::User(c) => c.to_term(),
            StageCall::Subscribe(r) => r.to_term(),
            StageCall::Demand => Term::atom("$demand"),
            StageCall::EstimateBufferedCount => Term::atom("$estimate_buffered_count"),
            StageCall::Info(m) => Term::tuple([Term::atom("$info"), m.clone()]),
        }
    }
}

/// The casts a stage serves: GenStage's own and the user's.
pub enum StageCast<S: GenStage> {
    /// A cast of the stage's own type.
    User(S::Cast),
    /// `async_subscribe`.
    Subscribe(SubscribeRequest<S::In>),
    /// `demand/2`.
    Demand(DemandMode),
    /// `async_info`.
    Info(Term),
}

impl<S: GenStage> FromTerm for StageCast<S> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Tuple(v) if v.len() == 4 && v[0].is_atom("$subscribe") => Ok(
                StageCast::Subscribe(SubscribeRequest::from_parts(&v[1], &v[2], &v[3])?),
            ),
            Term::Tuple(v) if v.len() == 2 && v[0].is_atom("$demand") => {
                match v[1].as_atom().map(|a| a.as_str()) {
                    Some("forward") => Ok(StageCast::Demand(DemandMode::Forward)),
                    Some("accumulate") => Ok(StageCast::Demand(DemandMode::Accumulate)),
                    _ => Err(ConvertError::new("forward | accumulate", &v[1])),
                }
            }
            Term::Tuple(v) if v.len() == 2 && v[0].is_atom("$info") => {
                Ok(StageCast::Info(v[1].clone()))
            }
            _ => S::Cast::from_term(term).map(StageCast::User),
        }
    }
}

impl<S: GenStage> ToTerm for StageCast<S>
where
    S::Cast: ToTerm,
{
    fn to_term(&self) -> Term {
        match self {
            StageCast::User(c) => c.to_term(),
            StageCast::Subscribe(r) => r.to_term(),
            StageCast::Demand(m) => Term::tuple([Term::atom("$demand"), Term::atom(m.name())]),
            StageCast::Info(m) => Term::tuple([Term::atom("$info"), m.clone()]),
        }
    }
}

/// A stage's reply: to a call of the user's, or to one of GenStage's own.
#[derive(Debug)]
pub enum StageReply<R> {
    /// The reply to a call of the stage's own type.
    User(R),
    /// The reply to one of GenStage's calls.
    Term(Term),
}

impl<R> StageReply<R> {
    pub(crate) fn into_term_reply(self) -> Option<Term> {
        match self {
            StageReply::Term(t) => Some(t),
            StageReply::User(_) => None,
        }
    }
}

impl<R: ToTerm> ToTerm for StageReply<R> {
    fn to_term(&self) -> Term {
        match self {
            StageReply::User(r) => r.to_term(),
            StageReply::Term(t) => t.clone(),
        }
    }
    fn into_term(self) -> Term {
        match self {
            StageReply::User(r) => r.into_term(),
            StageReply::Term(t) => t,
        }
    }
}

/// What a producer holds while its demand mode is `accumulate`.
enum Accumulated<E> {
    Demand(usize),
    Dispatch(Vec<E>),
}

/// A consumer's subscription to a producer.
struct ProducerEntry {
    stage: Dest,
    cancel: CancelMode,
    /// `(outstanding, min, max)`; `None` for manual demand.
    demand: Option<(usize, usize, usize)>,
}

/// What waits in a producer_consumer's queue for demand downstream.
enum PcItem<E> {
    Events(Vec<E>, Ref),
    Info(Message),
    Cancel(CancelMode, Cancel, Subscription),
}

/// The GenServer running the stage `S`: start it with
/// [`crate::Node::start_stage`], or put it under a supervisor with
/// `ChildSpec::server::<Stage<S>>(id, args)`.
pub struct Stage<S: GenStage> {
    user: S,
    kind: StageKind,
    dispatcher: Option<Box<dyn Dispatcher<S::Out>>>,
    buffer: Buffer<S::Out>,
    keep: BufferKeep,
    /// `Some` while a producer accumulates demand.
    accumulated: Option<Vec<Accumulated<S::Out>>>,
    /// Subscribed consumers: tag → (consumer, monitor).
    consumers: HashMap<Ref, (Pid, Ref)>,
    /// Monitors of consumers → their tags.
    monitors: HashMap<Ref, Ref>,
    /// Subscriptions to producers, by tag (which is the monitor).
    producers: HashMap<Ref, ProducerEntry>,
    pc_queue: VecDeque<PcItem<S::In>>,
    /// A producer_consumer's demand from downstream not yet met (may go
    /// below zero for a moment: the excess is buffered).
    pc_demand: i64,
}

type Ctx<S> = StageContext<S>;

fn log_error(ctx: &crate::process::Context, what: String) {
    tracing::error!(stage = %ctx.pid(), name = ?ctx.registered_name(), "{what}");
}

/// The name or pid GenStage's log lines give a stage.
fn self_name(ctx: &crate::process::Context) -> String {
    ctx.registered_name()
        .map_or_else(|| ctx.pid().to_string(), |n| n.as_str().to_string())
}

fn is_transient_shutdown(r: &Reason) -> bool {
    matches!(
        r,
        Reason::Normal | Reason::Shutdown | Reason::ShutdownWith(_)
    )
}

fn bad_events(e: &ConvertError) -> Term {
    Term::tuple([Term::atom("bad_events"), Term::binary(e.to_string())])
}

impl<S: GenStage> Stage<S> {
    fn outlet<'a>(ctx: &'a Ctx<S>) -> Outlet<'a> {
        Outlet { ctx }
    }

    // ---- producer side ----

    /// Sends events emitted by the last callback.
    fn flush_emitted(&mut self, ctx: &mut Ctx<S>) {
        let events = ctx.take_emitted();
        self.dispatch_events(events, ctx);
    }

    fn dispatch_events(&mut self, events: Vec<S::Out>, ctx: &Ctx<S>) {
        if events.is_empty() {
            return;
        }
        if let Some(acc) = &mut self.accumulated {
            acc.push(Accumulated::Dispatch(events));
            return;
        }
        let Some(dispatcher) = self.dispatcher.as_mut() else {
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} cannot dispatch events (an empty list must be returned): {} events",
                    self_name(ctx),
                    events.len()
                ),
            );
            return;
        };
        let length = events.len();
        let left = dispatcher.dispatch(events, &Self::outlet(ctx));
        if self.kind == StageKind::ProducerConsumer {
            let sent = (length - left.len()) as i64;
            self.pc_demand = (self.pc_demand - sent).max(0);
        }
        self.buffer_events(left, ctx);
    }

    fn buffer_events(&mut self, events: Vec<S::Out>, ctx: &Ctx<S>) {
        if events.is_empty() {
            return;
        }
        let (excess, due) = self.buffer.store(events, self.keep);
        if excess > 0 && self.user.format_discarded(excess) {
            tracing::warn!(
                stage = %ctx.pid(),
                "GenStage producer {} has discarded {excess} events from buffer",
                self_name(ctx)
            );
        }
        for info in due {
            self.dispatch_info(info, ctx);
        }
    }

    fn dispatch_info(&mut self, msg: Message, ctx: &Ctx<S>) {
        if let Some(d) = self.dispatcher.as_mut() {
            d.info(msg, &Self::outlet(ctx));
        }
    }

    fn buffer_or_dispatch_info(&mut self, msg: Message, ctx: &Ctx<S>) {
        if let Some(msg) = self.buffer.store_info(msg) {
            self.dispatch_info(msg, ctx);
        }
    }

    /// Serves `counter` events of demand from the buffer; gives what is
    /// left of it.
    fn take_from_buffer(&mut self, mut counter: usize, ctx: &Ctx<S>) -> usize {
        loop {
            if counter == 0 || self.buffer.len() == 0 {
                return counter;
            }
            let (events, infos) = self.buffer.take(counter);
            if events.is_empty() && infos.is_empty() {
                return counter;
            }
            counter -= events.len();
            self.dispatch_events(events, ctx);
            for info in infos {
                self.dispatch_info(info, ctx);
            }
        }
    }

    async fn take_from_buffer_or_handle_demand(
        &mut self,
        counter: usize,
        ctx: &mut Ctx<S>,
    ) -> Flow {
        let counter = self.take_from_buffer(counter, ctx);
        if counter == 0 {
            return Flow::Continue;
        }
        if let Some(acc) = &mut self.accumulated {
            acc.push(Accumulated::Demand(counter));
            return Flow::Continue;
        }
        let flow = self.user.handle_demand(counter, ctx).await;
        self.flush_emitted(ctx);
        flow
    }

    /// Demand the dispatcher passes on.
    async fn dispatcher_result(&mut self, counter: usize, ctx: &mut Ctx<S>) -> Flow {
        if self.kind == StageKind::ProducerConsumer {
            self.pc_demand += counter as i64;
            let d = self.pc_demand.max(0) as usize;
            let left = self.take_from_buffer(d, ctx);
            // What the buffer served has been taken off `pc_demand` by
            // `dispatch_events`.
            let _ = left;
            return self.take_pc_events(ctx).await;
        }
        self.take_from_buffer_or_handle_demand(counter, ctx).await
    }

    async fn on_subscribe(
        &mut self,
        consumer: Pid,
        tag: Ref,
        current: Option<(Ref, Term)>,
        opts: SubscribeOptions<S::Out>,
        ctx: &mut Ctx<S>,
    ) -> Flow {
        if self.kind == StageKind::Consumer {
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} received $gen_producer message: subscribe from {consumer}",
                    self_name(ctx)
                ),
            );
            return Flow::Continue;
        }
        if self.consumers.contains_key(&tag) {
            log_error(
                ctx,
                format!(
                    "GenStage producer {} received duplicated subscription from: {{{consumer}, {}}}",
                    self_name(ctx),
                    Term::Ref(tag)
                ),
            );
            let msg = protocol::cancel_term(
                GEN_CONSUMER,
                ctx.pid(),
                tag,
                Term::atom("duplicated_subscription"),
            );
            let _ = ctx.send_noconnect(consumer, msg);
            return Flow::Continue;
        }
        if let Some((old, reason)) = current
            && let Flow::Stop(r) = self
                .producer_cancel(old, Cancel::Cancel(Reason::from_term(reason)), ctx)
                .await
        {
            return Flow::Stop(r);
        }
        let mon = ctx.monitor(consumer);
        self.monitors.insert(mon, tag);
        self.consumers.insert(tag, (consumer, mon));
        let from = Subscription {
            stage: Dest::Pid(consumer),
            tag,
        };
        let kw = opts.keywords();
        let mode = self
            .user
            .handle_subscribe(Role::Consumer, &kw, from, ctx)
            .await;
        self.flush_emitted(ctx);
        match mode {
            Ok(Demand::Automatic) => {}
            Ok(Demand::Manual) => {
                return Flow::Stop(Reason::other(Term::tuple([
                    Term::atom("bad_return_value"),
                    Term::tuple([Term::atom("manual"), Term::atom("producer")]),
                ])));
            }
            Err(r) => return Flow::Stop(r),
        }
        let Some(d) = self.dispatcher.as_mut() else {
            return Flow::Continue;
        };
        match d.subscribe(&opts, consumer, tag, &Self::outlet(ctx)) {
            Ok(n) => self.dispatcher_result(n, ctx).await,
            Err(why) => {
                self.producer_cancel(tag, Cancel::Cancel(Reason::from_term(why)), ctx)
                    .await
            }
        }
    }

    async fn on_ask(&mut self, consumer: Pid, tag: Ref, n: usize, ctx: &mut Ctx<S>) -> Flow {
        if self.kind == StageKind::Consumer {
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} received $gen_producer message: ask from {consumer}",
                    self_name(ctx)
                ),
            );
            return Flow::Continue;
        }
        if !self.consumers.contains_key(&tag) {
            let msg = protocol::cancel_term(
                GEN_CONSUMER,
                ctx.pid(),
                tag,
                Term::atom("unknown_subscription"),
            );
            let _ = ctx.send_noconnect(consumer, msg);
            return Flow::Continue;
        }
        let Some(d) = self.dispatcher.as_mut() else {
            return Flow::Continue;
        };
        let demand = d.ask(n, consumer, tag, &Self::outlet(ctx));
        self.dispatcher_result(demand, ctx).await
    }

    async fn producer_cancel(&mut self, tag: Ref, why: Cancel, ctx: &mut Ctx<S>) -> Flow {
        let Some((pid, mon)) = self.consumers.remove(&tag) else {
            return Flow::Continue;
        };
        ctx.demonitor_flush(mon);
        self.monitors.remove(&mon);
        let msg = protocol::cancel_term(GEN_CONSUMER, ctx.pid(), tag, why.reason().to_term());
        let _ = ctx.send_noconnect(pid, msg);
        let from = Subscription {
            stage: Dest::Pid(pid),
            tag,
        };
        let flow = self.user.handle_cancel(why, from, ctx).await;
        self.flush_emitted(ctx);
        if let Flow::Stop(r) = flow {
            return Flow::Stop(r);
        }
        let Some(d) = self.dispatcher.as_mut() else {
            return Flow::Continue;
        };
        let demand = d.cancel(tag, &Self::outlet(ctx));
        self.dispatcher_result(demand, ctx).await
    }

    async fn set_demand_mode(&mut self, mode: DemandMode, ctx: &mut Ctx<S>) -> Flow {
        if self.kind != StageKind::Producer {
            if self.kind == StageKind::Consumer || mode == DemandMode::Accumulate {
                log_error(
                    ctx,
                    format!(
                        "Demand mode can only be set for producers, GenStage {} is a {}",
                        self_name(ctx),
                        self.kind.name()
                    ),
                );
            }
            return Flow::Continue;
        }
        match mode {
            DemandMode::Accumulate => {
                if self.accumulated.is_none() {
                    self.accumulated = Some(Vec::new());
                }
                Flow::Continue
            }
            DemandMode::Forward => {
                let Some(acc) = self.accumulated.take() else {
                    return Flow::Continue;
                };
                for item in acc {
                    let flow = match item {
                        Accumulated::Demand(d) => {
                            self.take_from_buffer_or_handle_demand(d, ctx).await
                        }
                        Accumulated::Dispatch(events) => {
                            self.dispatch_events(events, ctx);
                            Flow::Continue
                        }
                    };
                    if let Flow::Stop(r) = flow {
                        return Flow::Stop(r);
                    }
                }
                Flow::Continue
            }
        }
    }

    fn info(&mut self, msg: Term, ctx: &mut Ctx<S>) {
        let msg = Message::Term(msg);
        match self.kind {
            StageKind::Consumer => {
                let _ = ctx.send_message(ctx.pid(), msg);
            }
            StageKind::ProducerConsumer if !self.pc_queue.is_empty() => {
                self.pc_queue.push_back(PcItem::Info(msg));
            }
            _ => self.buffer_or_dispatch_info(msg, ctx),
        }
    }

    // ---- consumer side ----

    /// Subscribes to a producer; gives the reply for `sync_subscribe` and
    /// whether the stage goes on.
    async fn consumer_subscribe(
        &mut self,
        req: SubscribeRequest<S::In>,
        ctx: &mut Ctx<S>,
    ) -> (Term, Flow) {
        let SubscribeRequest { current, to, opts } = req;
        if self.kind == StageKind::Producer {
            log_error(
                ctx,
                format!(
                    "GenStage producer {} cannot be subscribed to another stage: {}",
                    self_name(ctx),
                    protocol::dest_term(to)
                ),
            );
            return (
                Term::tuple([Term::atom("error"), Term::atom("not_a_consumer")]),
                Flow::Continue,
            );
        }
        if let Err(message) = opts.validate() {
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} subscribe received invalid option: {message}",
                    self_name(ctx)
                ),
            );
            return (
                Term::tuple([
                    Term::atom("error"),
                    Term::tuple([Term::atom("bad_opts"), Term::binary(message)]),
                ]),
                Flow::Continue,
            );
        }
        // A local name resolves now, as GenServer.whereis does.
        let to = match to {
            Dest::Name(n) => ctx.node().whereis(n).map(Dest::Pid),
            Dest::NameOn(n, node) if node == ctx.node().name() => {
                ctx.node().whereis(n).map(Dest::Pid)
            }
            other => Some(other),
        };
        let Some(to) = to else {
            let fresh = Term::Ref(ctx.make_ref());
            let ok = Term::tuple([Term::atom("ok"), fresh]);
            if opts.cancel == CancelMode::Temporary {
                return (ok, Flow::Continue);
            }
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} was not able to subscribe to the process because that process is not alive",
                    std::any::type_name::<S>()
                ),
            );
            return (ok, Flow::Stop(Reason::NoProc));
        };
        let tag = ctx.monitor(to);
        let msg = SubscribeMsg {
            consumer: ctx.pid(),
            tag,
            current,
            opts: opts.clone(),
        };
        let _ = ctx.send(to, msg);
        let from = Subscription { stage: to, tag };
        let kw = opts.keywords();
        let mode = self
            .user
            .handle_subscribe(Role::Producer, &kw, from, ctx)
            .await;
        self.flush_emitted(ctx);
        let reply = Term::tuple([Term::atom("ok"), Term::Ref(tag)]);
        match mode {
            Ok(Demand::Automatic) => {
                let max = opts.max_demand;
                // Sent as the subscription was (connecting if need be): the
                // connection to a producer on another node may still be
                // coming up, and without this first demand nothing flows.
                let _ = ctx.send(
                    to,
                    AskMsg {
                        consumer: ctx.pid(),
                        tag,
                        n: max,
                    },
                );
                self.producers.insert(
                    tag,
                    ProducerEntry {
                        stage: to,
                        cancel: opts.cancel,
                        demand: Some((max, opts.min(), max)),
                    },
                );
                (reply, Flow::Continue)
            }
            Ok(Demand::Manual) => {
                self.producers.insert(
                    tag,
                    ProducerEntry {
                        stage: to,
                        cancel: opts.cancel,
                        demand: None,
                    },
                );
                (reply, Flow::Continue)
            }
            Err(r) => (reply, Flow::Stop(r)),
        }
    }

    /// Events from a producer.
    async fn on_events(
        &mut self,
        producer: Pid,
        tag: Ref,
        events: Vec<S::In>,
        ctx: &mut Ctx<S>,
    ) -> Flow {
        if self.kind == StageKind::Producer {
            log_error(
                ctx,
                format!(
                    "GenStage producer {} received $gen_consumer message: events from {producer}",
                    self_name(ctx)
                ),
            );
            return Flow::Continue;
        }
        match self.producers.get_mut(&tag) {
            // From now on the producer is its pid, as the events name it
            // (GenStage's `from`): asks go by pid, not by a name looked up
            // on its node each time.
            Some(entry) => entry.stage = Dest::Pid(producer),
            None => {
                let msg = protocol::cancel_term(
                    GEN_PRODUCER,
                    ctx.pid(),
                    tag,
                    Term::atom("unknown_subscription"),
                );
                let _ = ctx.send_noconnect(producer, msg);
                return Flow::Continue;
            }
        }
        if self.kind == StageKind::ProducerConsumer {
            self.pc_queue.push_back(PcItem::Events(events, tag));
            return self.take_pc_events(ctx).await;
        }
        self.consume(events, tag, ctx).await
    }

    /// Hands `events` of subscription `tag` to `handle_events` in batches,
    /// asking for more as each is handled.
    async fn consume(&mut self, events: Vec<S::In>, tag: Ref, ctx: &mut Ctx<S>) -> Flow {
        let Some(entry) = self.producers.get_mut(&tag) else {
            // Queued, and the producer has gone since.
            let from = Subscription {
                stage: Dest::Pid(ctx.pid()),
                tag,
            };
            let flow = self.user.handle_events(events, from, ctx).await;
            self.flush_emitted(ctx);
            return flow;
        };
        let from = Subscription {
            stage: entry.stage,
            tag,
        };
        let Some((demand, min, max)) = entry.demand else {
            let flow = self.user.handle_events(events, from, ctx).await;
            self.flush_emitted(ctx);
            return flow;
        };
        let (new_demand, batches) = split_batches(events, min, max, demand, |excess| {
            log_error(
                ctx,
                format!(
                    "GenStage consumer {} has received {excess} events in excess from: {from}",
                    self_name(ctx)
                ),
            )
        });
        entry.demand = Some((new_demand, min, max));
        for (batch, ask) in batches {
            let flow = self.user.handle_events(batch, from, ctx).await;
            self.flush_emitted(ctx);
            if let Flow::Stop(r) = flow {
                return Flow::Stop(r);
            }
            ctx.ask(from, ask);
        }
        Flow::Continue
    }

    async fn consumer_cancel(&mut self, tag: Ref, why: Cancel, ctx: &mut Ctx<S>) -> Flow {
        let Some(entry) = self.producers.remove(&tag) else {
            return Flow::Continue;
        };
        ctx.demonitor_flush(tag);
        let from = Subscription {
            stage: entry.stage,
            tag,
        };
        if self.kind == StageKind::ProducerConsumer && !self.pc_queue.is_empty() {
            self.pc_queue
                .push_back(PcItem::Cancel(entry.cancel, why, from));
            return Flow::Continue;
        }
        self.invoke_cancel(entry.cancel, why, from, ctx).await
    }

    async fn invoke_cancel(
        &mut self,
        mode: CancelMode,
        why: Cancel,
        from: Subscription,
        ctx: &mut Ctx<S>,
    ) -> Flow {
        let reason = why.reason().clone();
        let flow = self.user.handle_cancel(why, from, ctx).await;
        self.flush_emitted(ctx);
        if let Flow::Stop(r) = flow {
            return Flow::Stop(r);
        }
        let stops = match mode {
            CancelMode::Permanent => true,
            CancelMode::Transient => !is_transient_shutdown(&reason),
            CancelMode::Temporary => false,
        };
        if !stops || reason.to_term().is_atom("already_subscribed") {
            return Flow::Continue;
        }
        tracing::info!(
            stage = %ctx.pid(),
            "GenStage consumer {} is stopping after receiving cancel from producer {} with reason: {reason}",
            self_name(ctx),
            protocol::dest_term(from.stage)
        );
        Flow::Stop(reason)
    }

    /// A producer_consumer works through its queue while there is demand
    /// downstream.
    async fn take_pc_events(&mut self, ctx: &mut Ctx<S>) -> Flow {
        while self.pc_demand > 0 {
            let Some(item) = self.pc_queue.pop_front() else {
                break;
            };
            let flow = match item {
                PcItem::Info(msg) => {
                    self.buffer_or_dispatch_info(msg, ctx);
                    Flow::Continue
                }
                PcItem::Cancel(mode, why, from) => self.invoke_cancel(mode, why, from, ctx).await,
                PcItem::Events(events, tag) => self.consume(events, tag, ctx).await,
            };
            if let Flow::Stop(r) = flow {
                return Flow::Stop(r);
            }
        }
        Flow::Continue
    }

    // ---- messages ----

    /// Decodes events that came as terms; a batch that does not decode
    /// cancels its subscription.
    async fn on_term_events(
        &mut self,
        producer: Pid,
        tag: Ref,
        events: Vec<Term>,
        ctx: &mut Ctx<S>,
    ) -> Flow {
        let decoded: Result<Vec<S::In>, ConvertError> = S::In::from_owned_terms(events);
        match decoded {
            Ok(events) => self.on_events(producer, tag, events, ctx).await,
            Err(e) if self.producers.contains_key(&tag) => {
                let reason = bad_events(&e);
                log_error(
                    ctx,
                    format!(
                        "GenStage consumer {} cancels its subscription to {producer}: an event does not decode: {e}",
                        self_name(ctx)
                    ),
                );
                let msg = protocol::cancel_term(GEN_PRODUCER, ctx.pid(), tag, reason.clone());
                let _ = ctx.send_noconnect(producer, msg);
                self.consumer_cancel(tag, Cancel::Cancel(Reason::from_term(reason)), ctx)
                    .await
            }
            Err(_) => self.on_events(producer, tag, Vec::new(), ctx).await,
        }
    }

    async fn on_wire(&mut self, wire: Wire, ctx: &mut Ctx<S>) -> Flow {
        match wire {
            Wire::Subscribe {
                consumer,
                tag,
                current,
                opts,
            } => {
                let opts = match SubscribeOptions::from_keywords(&opts) {
                    Ok(o) => o,
                    Err(m) => {
                        let msg = protocol::cancel_term(
                            GEN_CONSUMER,
                            ctx.pid(),
                            tag,
                            Term::tuple([Term::atom("bad_opts"), Term::binary(m)]),
                        );
                        let _ = ctx.send_noconnect(consumer, msg);
                        return Flow::Continue;
                    }
                };
                self.on_subscribe(consumer, tag, current, opts, ctx).await
            }
            Wire::Ask { consumer, tag, n } => self.on_ask(consumer, tag, n, ctx).await,
            Wire::CancelFromConsumer { tag, reason } => {
                self.producer_cancel(tag, Cancel::Cancel(Reason::from_term(reason)), ctx)
                    .await
            }
            Wire::Events {
                producer,
                tag,
                events,
            } => self.on_term_events(producer, tag, events, ctx).await,
            Wire::CancelFromProducer { tag, reason } => {
                self.consumer_cancel(tag, Cancel::Cancel(Reason::from_term(reason)), ctx)
                    .await
            }
            Wire::Malformed(t) => {
                log_error(
                    ctx,
                    format!(
                        "GenStage {} received a malformed message: {t}",
                        self_name(ctx)
                    ),
                );
                Flow::Continue
            }
        }
    }
}

/// Splits `events` into batches of at most `max - min`, each with the
/// demand to ask once it is handled (GenStage's `split_batches`): asks again
/// whenever the outstanding demand falls to `min`. Gives the new
/// outstanding demand and the batches. Events beyond the demand are
/// reported through `excess` and still handed over.
pub(crate) fn split_batches<E>(
    mut events: Vec<E>,
    min: usize,
    max: usize,
    demand: usize,
    mut excess: impl FnMut(usize),
) -> (usize, Vec<(Vec<E>, usize)>) {
    let limit = max - min;
    let mut old_demand = demand;
    let mut new_demand = demand;
    let mut batches = Vec::with_capacity(events.len().div_ceil(limit.max(1)));
    while !events.is_empty() {
        let batch = if events.len() <= limit {
            std::mem::take(&mut events)
        } else {
            let rest = events.split_off(limit);
            std::mem::replace(&mut events, rest)
        };
        let mut size = batch.len();
        if size > old_demand {
            excess(size - old_demand);
            size = old_demand;
            old_demand = 0;
        } else {
            old_demand -= size;
        }
        let diff = new_demand as i64 - size as i64;
        let ask = if diff <= min as i64 {
            let ask = (max as i64 - diff) as usize;
            new_demand = max;
            ask
        } else {
            new_demand = diff as usize;
            0
        };
        batches.push((batch, ask));
    }
    (new_demand, batches)
}

impl<S: GenStage> GenServer for Stage<S> {
    type Args = S::Args;
    type Call = StageCall<S>;
    type Reply = StageReply<S::Reply>;
    type Cast = StageCast<S>;

    async fn init(args: S::Args, ctx: &mut Ctx<S>) -> Result<Self, Reason> {
        ctx.set_behaviour(|| crate::process::Behaviour {
            name: "gen_stage",
            module: std::any::type_name::<S>(),
        });
        let init: Init<S> = S::init(args, ctx).await?;
        let Init {
            state,
            kind,
            dispatcher,
            buffer_size,
            buffer_keep,
            demand,
            subscribe_to,
            misused,
        } = init;
        if let Some(opt) = misused.first() {
            return Err(Reason::other(Term::tuple([
                Term::atom("bad_opts"),
                Term::binary(format!("unknown options [{opt}] for a {}", kind.name())),
            ])));
        }
        let capacity = match (buffer_size, kind) {
            (Some(c), _) => c,
            (None, StageKind::Producer) => Some(10_000),
            (None, _) => None,
        };
        if kind != StageKind::Producer {
            // Events from other nodes are read straight into `S::In`.
            ctx.set_remote_decoder(protocol::decode_remote_events::<S::In>);
        }
        let dispatcher = match kind {
            StageKind::Consumer => None,
            _ => Some(dispatcher.unwrap_or_else(|| Box::new(DemandDispatcher::new()))),
        };
        let mut stage = Stage {
            user: state,
            kind,
            dispatcher,
            buffer: Buffer::new(capacity),
            keep: buffer_keep,
            accumulated: (demand == DemandMode::Accumulate).then(Vec::new),
            consumers: HashMap::new(),
            monitors: HashMap::new(),
            producers: HashMap::new(),
            pc_queue: VecDeque::new(),
            pc_demand: 0,
        };
        stage.flush_emitted(ctx);
        for (to, opts) in subscribe_to {
            let req = SubscribeRequest {
                current: None,
                to,
                opts,
            };
            let (reply, flow) = stage.consumer_subscribe(req, ctx).await;
            if let Flow::Stop(r) = flow {
                return Err(r);
            }
            if reply.as_tuple().is_some_and(|t| t[0].is_atom("error")) {
                return Err(Reason::other(reply));
            }
        }
        Ok(stage)
    }

    async fn handle_call(&mut self, request: StageCall<S>, ctx: &mut Ctx<S>) -> Reply<Self::Reply> {
        let ok = || Reply::Reply(StageReply::Term(Term::atom("ok")));
        match request {
            StageCall::User(req) => {
                let reply = self.user.handle_call(req, ctx).await;
                self.flush_emitted(ctx);
                match reply {
                    Reply::Reply(r) => Reply::Reply(StageReply::User(r)),
                    Reply::NoReply => Reply::NoReply,
                    Reply::Stop(why, r) => Reply::Stop(why, r.map(StageReply::User)),
                }
            }
            StageCall::Subscribe(req) => {
                let (reply, flow) = self.consumer_subscribe(req, ctx).await;
                match flow {
                    Flow::Continue => Reply::Reply(StageReply::Term(reply)),
                    Flow::Stop(r) => Reply::Stop(r, Some(StageReply::Term(reply))),
                }
            }
            StageCall::Demand => {
                let mode = if self.accumulated.is_some() {
                    DemandMode::Accumulate
                } else {
                    DemandMode::Forward
                };
                Reply::Reply(StageReply::Term(Term::atom(mode.name())))
            }
            StageCall::EstimateBufferedCount => {
                if self.kind == StageKind::Consumer {
                    log_error(
                        ctx,
                        format!(
                            "Buffered count can only be requested for producers, GenStage {} is a consumer",
                            self_name(ctx)
                        ),
                    );
                }
                Reply::Reply(StageReply::Term(Term::Int(self.buffer.len() as i64)))
            }
            StageCall::Info(msg) => {
                self.info(msg, ctx);
                ok()
            }
        }
    }

    async fn handle_cast(&mut self, request: StageCast<S>, ctx: &mut Ctx<S>) -> Flow {
        match request {
            StageCast::User(req) => {
                let flow = self.user.handle_cast(req, ctx).await;
                self.flush_emitted(ctx);
                flow
            }
            StageCast::Subscribe(req) => self.consumer_subscribe(req, ctx).await.1,
            StageCast::Demand(mode) => self.set_demand_mode(mode, ctx).await,
            StageCast::Info(msg) => {
                self.info(msg, ctx);
                Flow::Continue
            }
        }
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut Ctx<S>) -> Flow {
        // Rust values from stages of this node first.
        let message = match message.downcast::<EventsMsg<S::In>>() {
            Ok(m) => return self.on_events(m.producer, m.tag, m.events, ctx).await,
            Err(m) => m,
        };
        let message = match message.downcast::<AskMsg>() {
            Ok(m) => return self.on_ask(m.consumer, m.tag, m.n, ctx).await,
            Err(m) => m,
        };
        let message = match message.downcast::<SubscribeMsg<S::Out>>() {
            Ok(m) => {
                return self
                    .on_subscribe(m.consumer, m.tag, m.current, m.opts, ctx)
                    .await;
            }
            Err(m) => m,
        };
        if let Message::Down(down) = &message {
            let (reference, reason) = (&down.reference, &down.reason);
            if self.producers.contains_key(reference) {
                return self
                    .consumer_cancel(*reference, Cancel::Down(reason.clone()), ctx)
                    .await;
            }
            if let Some(tag) = self.monitors.get(reference).copied() {
                return self
                    .producer_cancel(tag, Cancel::Down(reason.clone()), ctx)
                    .await;
            }
        }
        let is_wire = match &message {
            Message::Term(Term::Tuple(v)) => {
                v.len() == 3
                    && matches!(&v[0], Term::Atom(a) if a.as_str() == GEN_PRODUCER || a.as_str() == GEN_CONSUMER)
            }
            Message::Local(_) => true,
            _ => false,
        };
        if is_wire {
            match message.into_term().map(protocol::parse_wire) {
                Some(Ok(wire)) => return self.on_wire(wire, ctx).await,
                Some(Err(term)) => {
                    let flow = self.user.handle_info(Message::Term(term), ctx).await;
                    self.flush_emitted(ctx);
                    return flow;
                }
                None => return Flow::Continue,
            }
        }
        let flow = self.user.handle_info(message, ctx).await;
        self.flush_emitted(ctx);
        flow
    }

    fn format_status(&self) -> Option<Term> {
        let mut data = vec![
            Term::tuple([
                Term::charlist("State"),
                self.user
                    .format_status()
                    .unwrap_or_else(|| Term::atom("state_not_shown")),
            ]),
            Term::tuple([Term::charlist("Stage"), Term::atom(self.kind.name())]),
        ];
        if let Some(d) = &self.dispatcher {
            data.push(Term::tuple([
                Term::charlist("Dispatcher"),
                Term::Atom(Atom::from(d.name())),
            ]));
        }
        if self.kind != StageKind::Producer {
            let producers: Vec<Term> = self
                .producers
                .values()
                .map(|p| protocol::dest_term(p.stage))
                .collect();
            data.push(Term::tuple([
                Term::charlist("Producers"),
                Term::List(producers),
            ]));
        }
        if self.kind != StageKind::Consumer {
            let consumers: Vec<Term> = self
                .consumers
                .values()
                .map(|(p, _)| Term::Pid(*p))
                .collect();
            data.push(Term::tuple([
                Term::charlist("Consumers"),
                Term::List(consumers),
            ]));
            data.push(Term::tuple([
                Term::charlist("Buffer size"),
                Term::Int(self.buffer.len() as i64),
            ]));
        }
        Some(Term::List(data))
    }

    async fn terminate(&mut self, reason: &Reason, ctx: &mut Ctx<S>) {
        self.user.terminate(reason, ctx).await;
    }
}

impl<E> std::fmt::Debug for SubscribeRequest<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeRequest")
            .field("current", &self.current)
            .field("to", &self.to)
            .field("opts", &self.opts)
            .finish()
    }
}

impl<S: GenStage> std::fmt::Debug for StageCall<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageCall::User(_) => write!(f, "User(<{}>)", std::any::type_name::<S::Call>()),
            StageCall::Subscribe(r) => write!(f, "Subscribe({r:?})"),
            StageCall::Demand => f.write_str("Demand"),
            StageCall::EstimateBufferedCount => f.write_str("EstimateBufferedCount"),
            StageCall::Info(t) => write!(f, "Info({t})"),
        }
    }
}

impl<S: GenStage> std::fmt::Debug for StageCast<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageCast::User(_) => write!(f, "User(<{}>)", std::any::type_name::<S::Cast>()),
            StageCast::Subscribe(r) => write!(f, "Subscribe({r:?})"),
            StageCast::Demand(m) => write!(f, "Demand({m:?})"),
            StageCast::Info(t) => write!(f, "Info({t})"),
        }
    }
}

impl<S: GenStage> std::fmt::Debug for Stage<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("stage", &std::any::type_name::<S>())
            .field("kind", &self.kind)
            .field("consumers", &self.consumers.len())
            .field("producers", &self.producers.len())
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::split_batches;

    fn run(events: usize, min: usize, max: usize, demand: usize) -> (usize, Vec<(usize, usize)>) {
        let (d, b) = split_batches((0..events).collect(), min, max, demand, |_| {});
        (d, b.into_iter().map(|(v, a)| (v.len(), a)).collect())
    }

    // The examples of GenStage's documentation ("Demand" in the moduledoc
    // and `:min_demand`): with max 1000 and min 750 a consumer handles
    // batches of 250 and asks 250 more after each once down to 750.
    #[test]
    fn batches_of_max_minus_min_ask_again_at_min() {
        assert_eq!(run(1000, 750, 1000, 1000), (1000, vec![(250, 250); 4]));
        // max 1000 and min 0: one batch of 1000, then ask for 1000.
        assert_eq!(run(1000, 0, 1000, 1000), (1000, vec![(1000, 1000)]));
        // The default min (500): two batches of 500, each asking 500.
        assert_eq!(
            run(1000, 500, 1000, 1000),
            (1000, vec![(500, 500), (500, 500)])
        );
    }

    #[test]
    fn a_partial_batch_asks_only_once_demand_falls_to_min() {
        // 100 of 1000 outstanding arrive: 900 still owed, above min 500.
        assert_eq!(run(100, 500, 1000, 1000), (900, vec![(100, 0)]));
        // Then 450 more: down to 450 (≤ 500), so ask 550 to be back at 1000.
        assert_eq!(run(450, 500, 1000, 900), (1000, vec![(450, 550)]));
    }

    #[test]
    fn events_beyond_the_demand_are_reported_as_excess() {
        let mut seen = 0;
        let (d, b) = split_batches((0..30).collect::<Vec<_>>(), 0, 10, 10, |n| seen += n);
        assert_eq!(seen, 20);
        assert_eq!(b.len(), 3);
        assert_eq!(d, 10);
    }
}
