//! The GenStage stages `interop_node` serves to Elixir nodes (events are
//! integers):
//!
//! - `numbers`: a producer of 0, 1, 2, … in order, as demanded (demand
//!   dispatcher);
//! - `bcast`: the same with the broadcast dispatcher;
//! - `parts`: the same with the partition dispatcher, partitions `0` and
//!   `1`, the default hash (`:erlang.phash2(Event, 2)`);
//! - `doubler`: a producer_consumer emitting each event times two; a call
//!   `{subscribe, Producer, Opts}` subscribes it and replies `ok`;
//! - `sink`: a consumer; `{subscribe, Producer, Opts}` as the doubler's, a
//!   call `events` gives every event received in order of arrival, a call
//!   `reset` empties that list and replies `ok`.

use ergo::gen_server::{Flow, Reply};
use ergo::gen_stage::{
    BroadcastDispatcher, GenStage, Init, NoEvents, PartitionDispatcher, StageContext,
    SubscribeOptions, Subscription,
};
use ergo::{Atom, Dest, Node, Reason, Term};

/// Which dispatcher a [`Numbers`] producer uses.
#[derive(Clone, Copy)]
pub(crate) enum Sharing {
    Demand,
    Broadcast,
    Partition,
}

/// A producer of 0, 1, 2, …
pub(crate) struct Numbers(i64);

impl GenStage for Numbers {
    type Args = Sharing;
    type In = NoEvents;
    type Out = i64;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(sharing: Sharing, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        let init = Init::producer(Numbers(0));
        Ok(match sharing {
            Sharing::Demand => init,
            Sharing::Broadcast => init.dispatcher(BroadcastDispatcher::new()),
            Sharing::Partition => init.dispatcher(PartitionDispatcher::count(2)),
        })
    }

    async fn handle_demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
        let end = self.0 + demand as i64;
        ctx.emit(self.0..end);
        self.0 = end;
        Flow::Continue
    }
}

/// The calls `doubler` and `sink` serve.
#[derive(ergo::Term, Debug)]
pub(crate) enum StageRequest {
    /// `{subscribe, Producer, Opts}`.
    Subscribe(Term, Term),
    /// `events`.
    Events,
    /// `reset`.
    Reset,
}

/// The producer named by a term: a pid, a local name, or `{Name, Node}`.
fn producer(t: &Term) -> Option<Dest> {
    match t {
        Term::Pid(p) => Some(Dest::Pid(*p)),
        Term::Atom(a) => Some(Dest::Name(*a)),
        Term::Tuple(v) if v.len() == 2 => Some(Dest::NameOn(v[0].as_atom()?, v[1].as_atom()?)),
        _ => None,
    }
}

/// Subscribes the stage as `{subscribe, Producer, Opts}` asks; the reply.
fn subscribe<S: GenStage<In = i64>>(
    producer_term: &Term,
    opts: &Term,
    ctx: &StageContext<S>,
) -> Term {
    let Some(to) = producer(producer_term) else {
        return Term::tuple([Term::atom("error"), Term::atom("bad_producer")]);
    };
    match SubscribeOptions::<i64>::from_keywords(opts) {
        Ok(opts) => {
            ctx.async_subscribe(to, opts);
            Term::atom("ok")
        }
        Err(why) => Term::tuple([
            Term::atom("error"),
            Term::tuple([Term::atom("bad_opts"), Term::binary(why)]),
        ]),
    }
}

/// A producer_consumer that doubles each event.
pub(crate) struct Doubler;

impl GenStage for Doubler {
    type Args = ();
    type In = i64;
    type Out = i64;
    type Call = StageRequest;
    type Reply = Term;
    type Cast = ();

    async fn init(_: (), _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        Ok(Init::producer_consumer(Doubler))
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> Flow {
        ctx.emit(events.into_iter().map(|e| e * 2));
        Flow::Continue
    }

    async fn handle_call(
        &mut self,
        req: StageRequest,
        ctx: &mut StageContext<Self>,
    ) -> Reply<Term> {
        Reply::Reply(match req {
            StageRequest::Subscribe(p, opts) => subscribe(&p, &opts, ctx),
            _ => Term::tuple([Term::atom("error"), Term::atom("unknown_call")]),
        })
    }
}

/// A consumer that keeps every event it receives.
pub(crate) struct Sink(Vec<i64>);

impl GenStage for Sink {
    type Args = ();
    type In = i64;
    type Out = NoEvents;
    type Call = StageRequest;
    type Reply = Term;
    type Cast = ();

    async fn init(_: (), _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        Ok(Init::consumer(Sink(Vec::new())))
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.0.extend(events);
        Flow::Continue
    }

    async fn handle_call(
        &mut self,
        req: StageRequest,
        ctx: &mut StageContext<Self>,
    ) -> Reply<Term> {
        Reply::Reply(match req {
            StageRequest::Subscribe(p, opts) => subscribe(&p, &opts, ctx),
            StageRequest::Events => Term::List(self.0.iter().map(|e| Term::Int(*e)).collect()),
            StageRequest::Reset => {
                self.0.clear();
                Term::atom("ok")
            }
        })
    }
}

/// Starts the five stages under their names.
pub(crate) async fn serve(node: &Node) {
    for (name, sharing) in [
        ("numbers", Sharing::Demand),
        ("bcast", Sharing::Broadcast),
        ("parts", Sharing::Partition),
    ] {
        node.start_stage_named::<Numbers>(Atom::from(name), sharing)
            .await
            .expect("a producer starts");
    }
    node.start_stage_named::<Doubler>("doubler", ())
        .await
        .expect("doubler starts");
    node.start_stage_named::<Sink>("sink", ())
        .await
        .expect("sink starts");
}
