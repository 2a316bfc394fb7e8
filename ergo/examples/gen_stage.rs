//! A GenStage pipeline: a producer, a producer_consumer and two consumers.
//!
//! ```text
//! cargo run --example gen_stage
//! ```
//!
//! `numbers` emits 1, 2, 3, … only as far as demand reaches it; it starts
//! with demand accumulated so that both consumers are subscribed before
//! the first event goes out. `squares` takes them and emits each squared,
//! shared by the partition dispatcher between two consumers: `even` takes
//! the even squares, `odd` the odd ones. Each consumer asks for at most 5
//! events at a time (`max_demand`), so no stage runs ahead of the one after
//! it. The consumers print what they get, and the program ends once
//! `even` and `odd` have seen 20 squares between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ergo::gen_server::Flow;
use ergo::gen_stage::{
    DemandMode, GenStage, Init, NoEvents, PartitionDispatcher, StageContext, SubscribeOptions,
    Subscription,
};
use ergo::{Node, Reason, Term};

/// Emits 1, 2, 3, … as demanded.
struct Numbers {
    next: i64,
}

impl GenStage for Numbers {
    type Args = ();
    type In = NoEvents;
    type Out = i64;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(_: (), _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        Ok(Init::producer(Numbers { next: 1 }).demand(DemandMode::Accumulate))
    }

    async fn handle_demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
        println!("numbers: asked for {demand}");
        let end = self.next + demand as i64;
        ctx.emit(self.next..end);
        self.next = end;
        Flow::Continue
    }
}

/// Squares each number; the partition dispatcher sends even squares to
/// partition `even` and odd ones to `odd`.
struct Squares;

impl GenStage for Squares {
    type Args = ();
    type In = i64;
    type Out = i64;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(_: (), _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        let parity = PartitionDispatcher::partitions([Term::atom("even"), Term::atom("odd")])
            .hash(|n: &i64| Some(Term::atom(if n % 2 == 0 { "even" } else { "odd" })));
        Ok(Init::producer_consumer(Squares).dispatcher(parity))
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        ctx: &mut StageContext<Self>,
    ) -> Flow {
        ctx.emit(events.into_iter().map(|n| n * n));
        Flow::Continue
    }
}

/// Prints what it receives; stops the program after 20 squares in all.
struct Printer {
    name: &'static str,
    seen: Arc<AtomicUsize>,
    done: Arc<tokio::sync::Notify>,
}

impl GenStage for Printer {
    type Args = (&'static str, Arc<AtomicUsize>, Arc<tokio::sync::Notify>);
    type In = i64;
    type Out = NoEvents;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        (name, seen, done): Self::Args,
        _ctx: &mut StageContext<Self>,
    ) -> Result<Init<Self>, Reason> {
        Ok(Init::consumer(Printer { name, seen, done }))
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        println!("{}: {events:?}", self.name);
        let total = self.seen.fetch_add(events.len(), Ordering::SeqCst) + events.len();
        if total >= 20 {
            self.done.notify_one();
        }
        Flow::Continue
    }
}

#[tokio::main]
async fn main() {
    let node = Node::builder("stages@localhost")
        .start()
        .expect("node starts");
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());

    let numbers = node
        .start_stage::<Numbers>(())
        .await
        .expect("numbers starts");
    let squares = node
        .start_stage::<Squares>(())
        .await
        .expect("squares starts");
    let even = node
        .start_stage::<Printer>(("even", seen.clone(), done.clone()))
        .await
        .expect("even starts");
    let odd = node
        .start_stage::<Printer>(("odd", seen.clone(), done.clone()))
        .await
        .expect("odd starts");

    squares
        .subscribe(&numbers, SubscribeOptions::new().max_demand(10))
        .await
        .expect("squares subscribes to numbers");
    for (consumer, partition) in [(&even, "even"), (&odd, "odd")] {
        consumer
            .subscribe(
                &squares,
                SubscribeOptions::new()
                    .max_demand(5)
                    .min_demand(2)
                    .partition(Term::atom(partition)),
            )
            .await
            .expect("a printer subscribes to squares");
    }
    println!("all subscribed; numbers starts forwarding demand");
    numbers.set_demand(DemandMode::Forward);

    done.notified().await;
    println!(
        "done: {} squares printed",
        seen.load(Ordering::SeqCst).min(20)
    );
}
