//! `#[gen_stage]`: a producer, a producer_consumer and a consumer written
//! with the macro run a pipeline; their typed calls and casts go through
//! the generated clients; manual demand, subscribe and cancel handlers and
//! `Reply<T>` work as the hand-written trait's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::gen_server::{Flow, Reply};
use ergo::gen_stage::{
    Cancel, CancelMode, Demand, Init, StageContext, StageRef, SubscribeOptions, Subscription,
};
use ergo::{Node, Reason, gen_stage};

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

/// Emits 0, 1, 2, … as demanded, up to its limit.
struct Numbers {
    next: i64,
    limit: i64,
}

#[gen_stage(out = i64)]
impl Numbers {
    #[init]
    fn init(limit: i64) -> Init<Self> {
        Init::producer(Numbers { next: 0, limit })
    }

    #[demand]
    fn demand(&mut self, demand: usize) -> Vec<i64> {
        let end = (self.next + demand as i64).min(self.limit);
        let events = (self.next..end).collect();
        self.next = end;
        events
    }

    /// How many events it has emitted.
    #[call]
    fn emitted(&self) -> i64 {
        self.next
    }

    /// Raises the limit by `n` and says the new one.
    #[call]
    async fn raise(&mut self, n: i64) -> i64 {
        self.limit += n;
        self.limit
    }

    /// Emits `n` events now, beyond the demand (into the buffer), and
    /// replies with the next number, or refuses a negative `n`.
    #[call]
    fn push(&mut self, n: i64, ctx: &mut StageContext<Self>) -> Reply<i64> {
        if n < 0 {
            return Reply::Stop(Reason::atom("negative"), Some(self.next));
        }
        ctx.emit(self.next..self.next + n);
        self.next += n;
        Reply::Reply(self.next)
    }
}

/// Turns each number into `"n<number>"`.
struct Label {
    seen: usize,
}

#[gen_stage(out = String)]
impl Label {
    #[init]
    async fn start() -> Result<Init<Self>, Reason> {
        Ok(Init::producer_consumer(Label { seen: 0 }))
    }

    #[events]
    fn label(&mut self, events: Vec<i64>, ctx: &mut StageContext<Self>) {
        self.seen += events.len();
        ctx.emit(events.into_iter().map(|e| format!("n{e}")));
    }

    /// How many events it has labelled.
    #[call]
    fn seen(&self) -> i64 {
        self.seen as i64
    }
}

/// What a [`Collector`] saw, shared with the test.
#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<String>>>,
    cancels: Arc<Mutex<Vec<Cancel>>>,
    subs: Arc<Mutex<Vec<Subscription>>>,
    stopped: Arc<Mutex<Option<Reason>>>,
}

impl Log {
    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

/// Collects labels; in manual mode it asks only when cast `ask`.
struct Collector {
    log: Log,
    manual: bool,
    from: Option<Subscription>,
}

#[gen_stage]
impl Collector {
    fn init(log: Log, manual: bool) -> Init<Self> {
        Init::consumer(Collector {
            log,
            manual,
            from: None,
        })
    }

    #[subscribe]
    fn subscribed(&mut self, from: Subscription) -> Demand {
        self.log.subs.lock().unwrap().push(from);
        self.from = Some(from);
        if self.manual {
            Demand::Manual
        } else {
            Demand::Automatic
        }
    }

    #[events]
    async fn collect(&mut self, events: Vec<String>, from: Subscription) -> Flow {
        assert_eq!(Some(from), self.from, "events come from the subscription");
        self.log.events.lock().unwrap().extend(events);
        Flow::Continue
    }

    #[cancel]
    fn cancelled(&mut self, cancel: Cancel) {
        self.log.cancels.lock().unwrap().push(cancel);
    }

    /// How many labels it holds.
    #[call]
    fn count(&self) -> i64 {
        self.log.len() as i64
    }

    /// Asks its producer for `n` more (manual demand).
    #[cast]
    fn ask(&mut self, n: i64, ctx: &mut StageContext<Self>) {
        if let Some(from) = self.from {
            ctx.ask(from, n as usize);
        }
    }

    #[terminate]
    fn stopped(&mut self, reason: &Reason) {
        *self.log.stopped.lock().unwrap() = Some(reason.clone());
    }
}

async fn collector(node: &Node, manual: bool) -> (StageRef<Collector>, Log) {
    let log = Log::default();
    let c = node
        .start_stage::<Collector>((log.clone(), manual))
        .await
        .unwrap();
    (c, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_macro_written_pipeline_delivers_every_event_in_order() {
    let node = node("gsm_pipeline");
    let numbers = node.start_stage::<Numbers>(10_000).await.unwrap();
    let label = node.start_stage::<Label>(()).await.unwrap();
    let (collector, log) = collector(&node, false).await;
    label
        .subscribe(&numbers, SubscribeOptions::new().max_demand(100))
        .await
        .unwrap();
    collector
        .subscribe(&label, SubscribeOptions::new().max_demand(50))
        .await
        .unwrap();
    until("every event", || log.len() == 10_000).await;
    let want: Vec<String> = (0..10_000).map(|e| format!("n{e}")).collect();
    assert_eq!(*log.events.lock().unwrap(), want);
    // The typed calls, through the generated clients.
    assert_eq!(numbers.emitted().await, Ok(10_000));
    assert_eq!(label.seen().await, Ok(10_000));
    assert_eq!(collector.count().await, Ok(10_000));
    assert_eq!(log.subs.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_and_casts_reach_their_handlers() {
    let node = node("gsm_calls");
    let numbers = node.start_stage::<Numbers>(5).await.unwrap();
    let label = node.start_stage::<Label>(()).await.unwrap();
    let (collector, log) = collector(&node, false).await;
    label
        .subscribe(&numbers, SubscribeOptions::new().max_demand(10))
        .await
        .unwrap();
    collector
        .subscribe(&label, SubscribeOptions::new().max_demand(10))
        .await
        .unwrap();
    until("the first five", || log.len() == 5).await;
    // An async call with an argument; the raised limit is only used on the
    // next demand, which `push` does not make.
    assert_eq!(numbers.raise(3).await, Ok(8));
    // A call that emits from its context and replies with `Reply<T>`.
    assert_eq!(numbers.push_timeout(2, Duration::from_secs(1)).await, Ok(7));
    until("the pushed two", || log.len() == 7).await;
    assert_eq!(
        *log.events.lock().unwrap(),
        ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]
    );
    // `Reply::Stop` stops the producer after replying; the stages after it,
    // subscribed permanently, stop with it, and the collector runs
    // `#[cancel]` and `#[terminate]`.
    assert_eq!(numbers.push(-1).await, Ok(7));
    assert_eq!(numbers.wait().await, Reason::atom("negative"));
    assert_eq!(label.wait().await, Reason::atom("negative"));
    assert_eq!(collector.wait().await, Reason::atom("negative"));
    assert_eq!(
        *log.cancels.lock().unwrap(),
        [Cancel::Down(Reason::atom("negative"))]
    );
    assert_eq!(*log.stopped.lock().unwrap(), Some(Reason::atom("negative")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_demand_asks_from_a_cast_handler() {
    let node = node("gsm_manual");
    let numbers = node.start_stage::<Numbers>(1_000).await.unwrap();
    let label = node.start_stage::<Label>(()).await.unwrap();
    label
        .subscribe(&numbers, SubscribeOptions::new())
        .await
        .unwrap();
    let (collector, log) = collector(&node, true).await;
    collector
        .subscribe(
            &label,
            SubscribeOptions::new().cancel(CancelMode::Temporary),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(log.len(), 0, "nothing asked, nothing sent");
    collector.ask(7);
    until("seven events", || log.len() == 7).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(collector.count().await, Ok(7));
    assert_eq!(
        *log.events.lock().unwrap(),
        ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]
    );
    // A temporary subscription outlives its producer.
    label.stop(Reason::atom("done")).await.unwrap();
    until("the cancel", || !log.cancels.lock().unwrap().is_empty()).await;
    assert_eq!(
        *log.cancels.lock().unwrap(),
        [Cancel::Down(Reason::atom("done"))]
    );
    assert_eq!(collector.count().await, Ok(7));
}
