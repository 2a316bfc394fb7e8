//! GenStage between Rust stages of one node: demand, each dispatcher,
//! producer_consumer, cancel modes, manual demand, the buffer, demand
//! modes, ConsumerSupervisor, and a producer that crashes mid-stream; and
//! Rust stages of two nodes connected over TCP.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::gen_server::{Flow, Reply};
use ergo::gen_stage::{
    BroadcastDispatcher, BufferKeep, Cancel, CancelMode, ConsumerSupervisor,
    ConsumerSupervisorSpec, Demand, DemandMode, GenStage, Init, NoEvents, PartitionDispatcher,
    Role, StageContext, StageRef, SubscribeOptions, Subscription,
};
use ergo::{Atom, Node, Reason, Restart, Term};

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 4 s");
}

/// Emits 0, 1, 2, … as demanded, up to `limit` (then nothing more); a
/// `crash_at` makes it panic once it reaches that number.
struct Numbers {
    next: i64,
    limit: i64,
    crash_at: Option<i64>,
}

#[derive(Clone, Copy)]
enum Dispatch {
    Demand,
    Broadcast,
    Partition,
}

struct NumbersArgs {
    limit: i64,
    crash_at: Option<i64>,
    dispatch: Dispatch,
    buffer: Option<(usize, BufferKeep)>,
    accumulate: bool,
}

impl NumbersArgs {
    fn upto(limit: i64) -> Self {
        NumbersArgs {
            limit,
            crash_at: None,
            dispatch: Dispatch::Demand,
            buffer: None,
            accumulate: false,
        }
    }
}

impl GenStage for Numbers {
    type Args = NumbersArgs;
    type In = NoEvents;
    type Out = i64;
    type Call = i64;
    type Reply = i64;
    type Cast = ();

    async fn init(a: NumbersArgs, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        let mut init = Init::producer(Numbers {
            next: 0,
            limit: a.limit,
            crash_at: a.crash_at,
        });
        init = match a.dispatch {
            Dispatch::Demand => init,
            Dispatch::Broadcast => init.dispatcher(BroadcastDispatcher::new()),
            Dispatch::Partition => init.dispatcher(PartitionDispatcher::count(2)),
        };
        if let Some((n, keep)) = a.buffer {
            init = init.buffer_size(n).buffer_keep(keep);
        }
        if a.accumulate {
            init = init.demand(DemandMode::Accumulate);
        }
        Ok(init)
    }

    async fn handle_demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
        let end = (self.next + demand as i64).min(self.limit);
        if let Some(c) = self.crash_at
            && end > c
        {
            ctx.emit(self.next..c);
            panic!("numbers crashed at {c}");
        }
        ctx.emit(self.next..end);
        self.next = end;
        Flow::Continue
    }

    /// A call `n` emits `n` events beyond the demand (into the buffer).
    async fn handle_call(&mut self, n: i64, ctx: &mut StageContext<Self>) -> Reply<i64> {
        ctx.emit(self.next..self.next + n);
        self.next += n;
        Reply::Reply(self.next)
    }
}

/// Doubles each event.
struct Doubler;

impl GenStage for Doubler {
    type Args = ();
    type In = i64;
    type Out = i64;
    type Call = ();
    type Reply = ();
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
}

/// Records what it receives and how its subscriptions end.
#[derive(Clone, Default)]
struct Seen {
    events: Arc<Mutex<Vec<i64>>>,
    cancels: Arc<Mutex<Vec<Cancel>>>,
    subs: Arc<Mutex<Vec<Subscription>>>,
}

impl Seen {
    fn events(&self) -> Vec<i64> {
        self.events.lock().unwrap().clone()
    }
    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

struct Sink {
    seen: Seen,
    manual: bool,
}

impl GenStage for Sink {
    type Args = (Seen, bool);
    type In = i64;
    type Out = NoEvents;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        (seen, manual): (Seen, bool),
        _ctx: &mut StageContext<Self>,
    ) -> Result<Init<Self>, Reason> {
        Ok(Init::consumer(Sink { seen, manual }))
    }

    async fn handle_subscribe(
        &mut self,
        _role: Role,
        _opts: &[(Atom, Term)],
        from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Result<Demand, Reason> {
        self.seen.subs.lock().unwrap().push(from);
        Ok(if self.manual {
            Demand::Manual
        } else {
            Demand::Automatic
        })
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.seen.events.lock().unwrap().extend(events);
        Flow::Continue
    }

    async fn handle_cancel(
        &mut self,
        cancel: Cancel,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.seen.cancels.lock().unwrap().push(cancel);
        Flow::Continue
    }
}

async fn sink(node: &Node, manual: bool) -> (StageRef<Sink>, Seen) {
    let seen = Seen::default();
    let s = node
        .start_stage::<Sink>((seen.clone(), manual))
        .await
        .unwrap();
    (s, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_delivers_every_event_in_order_through_a_producer_consumer() {
    let node = node("gs_pipeline");
    let numbers = node
        .start_stage::<Numbers>(NumbersArgs::upto(100_000))
        .await
        .unwrap();
    let doubler = node.start_stage::<Doubler>(()).await.unwrap();
    let (sink, seen) = sink(&node, false).await;
    doubler
        .subscribe(&numbers, SubscribeOptions::new().max_demand(1000))
        .await
        .unwrap();
    sink.subscribe(&doubler, SubscribeOptions::new().max_demand(1000))
        .await
        .unwrap();
    until("all events", || seen.len() == 100_000).await;
    let want: Vec<i64> = (0..100_000).map(|e| e * 2).collect();
    assert_eq!(seen.events(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demand_dispatcher_shares_events_and_never_exceeds_demand() {
    let node = node("gs_demand");
    let numbers = node
        .start_stage::<Numbers>(NumbersArgs::upto(10_000))
        .await
        .unwrap();
    let (a, seen_a) = sink(&node, false).await;
    let (b, seen_b) = sink(&node, false).await;
    let opts = || SubscribeOptions::new().max_demand(10).min_demand(5);
    a.subscribe(&numbers, opts()).await.unwrap();
    b.subscribe(&numbers, opts()).await.unwrap();
    until("all events", || seen_a.len() + seen_b.len() == 10_000).await;
    let mut all = seen_a.events();
    all.extend(seen_b.events());
    all.sort();
    assert_eq!(all, (0..10_000).collect::<Vec<_>>(), "each event once");
    assert!(
        seen_a.len() > 0 && seen_b.len() > 0,
        "both consumers got events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broadcast_dispatcher_sends_every_event_to_every_consumer_and_selectors_filter() {
    let node = node("gs_bcast");
    let mut args = NumbersArgs::upto(1_000);
    args.dispatch = Dispatch::Broadcast;
    args.accumulate = true;
    let numbers = node.start_stage::<Numbers>(args).await.unwrap();
    let (a, seen_a) = sink(&node, false).await;
    let (b, seen_b) = sink(&node, false).await;
    a.subscribe(&numbers, SubscribeOptions::new().max_demand(50))
        .await
        .unwrap();
    b.subscribe(
        &numbers,
        SubscribeOptions::new()
            .max_demand(50)
            .selector(|e: &i64| e % 2 == 0),
    )
    .await
    .unwrap();
    numbers.set_demand(DemandMode::Forward);
    until("all events", || {
        seen_a.len() == 1_000 && seen_b.len() == 500
    })
    .await;
    assert_eq!(seen_a.events(), (0..1_000).collect::<Vec<_>>());
    assert_eq!(seen_b.events(), (0..1_000).step_by(2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partition_dispatcher_routes_by_phash2_and_a_partition_is_taken_once() {
    let node = node("gs_part");
    let mut args = NumbersArgs::upto(2_000);
    args.dispatch = Dispatch::Partition;
    args.accumulate = true;
    let numbers = node.start_stage::<Numbers>(args).await.unwrap();
    let (p0, seen0) = sink(&node, false).await;
    let (p1, seen1) = sink(&node, false).await;
    p0.subscribe(
        &numbers,
        SubscribeOptions::new().partition(0i64).max_demand(100),
    )
    .await
    .unwrap();
    p1.subscribe(
        &numbers,
        SubscribeOptions::new().partition(1i64).max_demand(100),
    )
    .await
    .unwrap();
    numbers.set_demand(DemandMode::Forward);
    until("all events", || seen0.len() + seen1.len() == 2_000).await;
    for (p, seen) in [(0u32, &seen0), (1, &seen1)] {
        let events = seen.events();
        assert!(
            events.windows(2).all(|w| w[0] < w[1]),
            "in order within a partition"
        );
        for e in events {
            assert_eq!(
                ergo::etf::phash2_range(&Term::Int(e), 2),
                Some(p),
                "{e} routed as :erlang.phash2({e}, 2)"
            );
        }
    }
    // A second consumer for partition 0 is refused with a cancel.
    let (late, late_seen) = sink(&node, false).await;
    late.subscribe(
        &numbers,
        SubscribeOptions::new()
            .partition(0i64)
            .cancel(CancelMode::Temporary),
    )
    .await
    .unwrap();
    until("the refusal", || {
        !late_seen.cancels.lock().unwrap().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_demand_gets_only_what_was_asked() {
    let node = node("gs_manual");
    let numbers = node
        .start_stage::<Numbers>(NumbersArgs::upto(1_000))
        .await
        .unwrap();
    let (s, seen) = sink(&node, true).await;
    s.subscribe(&numbers, SubscribeOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.len(), 0, "nothing asked, nothing sent");
    let sub = seen.subs.lock().unwrap()[0];
    // Ask as the consumer would, from inside it: a call would be the way; here
    // the message GenStage.ask sends.
    node.send(
        sub.stage,
        Term::tuple([
            Term::atom("$gen_producer"),
            Term::tuple([Term::Pid(s.pid().unwrap()), Term::Ref(sub.tag)]),
            Term::tuple([Term::atom("ask"), Term::Int(7)]),
        ]),
    )
    .unwrap();
    until("seven events", || seen.len() == 7).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.events(), (0..7).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_modes_decide_whether_the_consumer_survives_its_producer() {
    let node = node("gs_cancel");
    for (mode, reason, survives) in [
        (CancelMode::Permanent, Reason::Normal, false),
        (CancelMode::Transient, Reason::Normal, true),
        (CancelMode::Transient, Reason::atom("boom"), false),
        (CancelMode::Temporary, Reason::atom("boom"), true),
    ] {
        let numbers = node
            .start_stage::<Numbers>(NumbersArgs::upto(10))
            .await
            .unwrap();
        let (s, seen) = sink(&node, false).await;
        s.subscribe(&numbers, SubscribeOptions::new().cancel(mode))
            .await
            .unwrap();
        until("the events", || seen.len() == 10).await;
        numbers.stop(reason.clone()).await.ok();
        until("the cancel", || !seen.cancels.lock().unwrap().is_empty()).await;
        assert_eq!(
            seen.cancels.lock().unwrap()[0],
            Cancel::Down(reason.clone()),
            "{mode:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let alive = node.process_info(s.pid().unwrap()).is_some();
        assert_eq!(alive, survives, "{mode:?} with {reason}");
        if !survives {
            assert_eq!(s.wait().await, reason);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_keeps_the_first_or_the_last_events() {
    let node = node("gs_buffer");
    for (keep, want) in [
        (BufferKeep::First, (0..5).collect::<Vec<i64>>()),
        (BufferKeep::Last, (15..20).collect()),
    ] {
        let mut args = NumbersArgs::upto(0);
        args.buffer = Some((5, keep));
        let numbers = node.start_stage::<Numbers>(args).await.unwrap();
        // 20 events with no consumer: 5 kept.
        assert_eq!(numbers.call(20).await.unwrap(), 20);
        assert_eq!(numbers.estimate_buffered_count().await.unwrap(), 5);
        let (s, seen) = sink(&node, false).await;
        s.subscribe(&numbers, SubscribeOptions::new())
            .await
            .unwrap();
        until("the buffered events", || seen.len() == 5).await;
        assert_eq!(seen.events(), want, "{keep:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accumulated_demand_waits_until_forward() {
    let node = node("gs_accumulate");
    let mut args = NumbersArgs::upto(100);
    args.accumulate = true;
    let numbers = node.start_stage::<Numbers>(args).await.unwrap();
    assert_eq!(numbers.demand().await.unwrap(), DemandMode::Accumulate);
    let (s, seen) = sink(&node, false).await;
    s.subscribe(&numbers, SubscribeOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.len(), 0);
    numbers.set_demand(DemandMode::Forward);
    until("the events", || seen.len() == 100).await;
    assert_eq!(numbers.demand().await.unwrap(), DemandMode::Forward);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_crashes_mid_stream_ends_its_permanent_consumers() {
    let node = node("gs_crash");
    let mut args = NumbersArgs::upto(1_000_000);
    args.crash_at = Some(5_000);
    let numbers = node.start_stage::<Numbers>(args).await.unwrap();
    let (s, seen) = sink(&node, false).await;
    s.subscribe(&numbers, SubscribeOptions::new().max_demand(100))
        .await
        .unwrap();
    let reason = s.wait().await;
    assert!(
        reason.to_string().contains("numbers crashed at 5000"),
        "{reason}"
    );
    let events = seen.events();
    assert_eq!(events, (0..events.len() as i64).collect::<Vec<_>>());
    assert!(events.len() <= 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_supervisor_runs_at_most_max_demand_children_at_once() {
    let node = node("gs_consup");
    let numbers = node
        .start_stage::<Numbers>(NumbersArgs::upto(60))
        .await
        .unwrap();
    let running = Arc::new(Mutex::new((0usize, 0usize, 0usize))); // now, peak, done
    let r = running.clone();
    let spec = ConsumerSupervisorSpec::spawn(move |_ctx, _event: i64| {
        let r = r.clone();
        async move {
            {
                let mut g = r.lock().unwrap();
                g.0 += 1;
                g.1 = g.1.max(g.0);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut g = r.lock().unwrap();
            g.0 -= 1;
            g.2 += 1;
            Reason::Normal
        }
    })
    .restart(Restart::Temporary)
    .subscribe_to(
        numbers.dest(),
        SubscribeOptions::new().max_demand(4).min_demand(2),
    );
    let sup = node
        .start_stage::<ConsumerSupervisor<i64>>(spec)
        .await
        .unwrap();
    until("all children", || running.lock().unwrap().2 == 60).await;
    let peak = running.lock().unwrap().1;
    assert!((2..=4).contains(&peak), "peak {peak}");
    let count = sup
        .call(ergo::gen_stage::ConsumerSupervisorCall::CountChildren)
        .await
        .unwrap();
    assert!(count.to_string().contains("{active,0}"), "{count}");
}

/// Takes strings: subscribed by address to a producer of integers, which
/// the type system cannot see.
struct Words(Arc<Mutex<Vec<Cancel>>>);

impl GenStage for Words {
    type Args = Arc<Mutex<Vec<Cancel>>>;
    type In = String;
    type Out = NoEvents;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(c: Self::Args, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        Ok(Init::consumer(Words(c)))
    }

    async fn handle_events(
        &mut self,
        _events: Vec<String>,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        panic!("integers must never arrive as strings");
    }

    async fn handle_cancel(
        &mut self,
        cancel: Cancel,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.0.lock().unwrap().push(cancel);
        Flow::Continue
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_do_not_decode_cancel_the_subscription_saying_what_was_expected() {
    let node = node("gs_badevents");
    words_cancel_their_subscription_to_numbers(&node, &node).await;
}

/// Subscribes a `Words` consumer on `consumer_node`, by address, to a
/// producer of integers on `producer_node`, temporarily: its subscription
/// is cancelled with a reason that names the `binary` it expected, and the
/// consumer stays.
async fn words_cancel_their_subscription_to_numbers(producer_node: &Node, consumer_node: &Node) {
    let numbers = producer_node
        .start_stage::<Numbers>(NumbersArgs::upto(10))
        .await
        .unwrap();
    let cancels = Arc::new(Mutex::new(Vec::new()));
    let words = consumer_node
        .start_stage::<Words>(cancels.clone())
        .await
        .unwrap();
    // By address: `subscribe(&numbers, …)` would not compile.
    words
        .subscribe_to(
            numbers.dest(),
            SubscribeOptions::new().cancel(CancelMode::Temporary),
        )
        .await
        .unwrap();
    until("the cancel", || !cancels.lock().unwrap().is_empty()).await;
    let cancel = cancels.lock().unwrap()[0].clone();
    let text = cancel.reason().to_string();
    assert!(
        matches!(cancel, Cancel::Cancel(_))
            && text.contains("bad_events")
            && text.contains("binary"),
        "{text}"
    );
    // Temporary: the consumer is still there, and the producer dropped the
    // subscription (its demand is gone).
    assert!(consumer_node.process_info(words.pid().unwrap()).is_some());
}

/// Two nodes of this OS process that talk over TCP, through an EPMD of
/// their own on a free port.
async fn two_nodes(a: &str, b: &str) -> (Node, Node) {
    let epmd = common::free_port();
    (
        common::dist_node(a, "gs_two_nodes", epmd).await,
        common::dist_node(b, "gs_two_nodes", epmd).await,
    )
}

/// Events a producer sends to a consumer on another node are read from
/// the connection straight into the consumer's event type: every one
/// arrives, in order, over many batches. A batch that does not read as
/// the consumer's type still comes as terms and cancels the subscription
/// with the reason a local one gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_another_node_arrive_typed_in_order_and_a_wrong_type_cancels() {
    let (a, b) = two_nodes("gs_remote_a", "gs_remote_b").await;
    let numbers = a
        .start_stage::<Numbers>(NumbersArgs::upto(20_000))
        .await
        .unwrap();
    let (sink, seen) = sink(&b, false).await;
    sink.subscribe(&numbers, SubscribeOptions::new().max_demand(700))
        .await
        .unwrap();
    for _ in 0..1000 {
        if seen.len() >= 20_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.events(), (0..20_000).collect::<Vec<i64>>());

    words_cancel_their_subscription_to_numbers(&a, &b).await;
}
