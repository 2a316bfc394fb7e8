//! The GenStage stages of the GenStage figures (`bin/gen_stage_side.rs`
//! and `benches/gen_stage.rs`), the same as `elixir/gen_stage_bench.exs`
//! runs on Elixir's GenStage: a producer of integers, a producer_consumer
//! doubling each, and a consumer counting them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ergo::gen_server::{Flow, Reply};
use ergo::gen_stage::{GenStage, Init, NoEvents, StageContext, Subscription};
use ergo::{Node, Reason};

/// Emits 0, 1, 2, … as demanded; a call `k` emits `k` more beyond any
/// demand. Started with `true`, its buffer has no limit.
#[derive(Debug)]
pub struct Numbers(i64);

impl GenStage for Numbers {
    type Args = bool;
    type In = NoEvents;
    type Out = i64;
    type Call = i64;
    type Reply = ();
    type Cast = ();

    async fn init(unbounded: bool, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        let init = Init::producer(Numbers(0));
        Ok(if unbounded {
            init.buffer_unbounded()
        } else {
            init
        })
    }

    async fn handle_demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
        let end = self.0 + demand as i64;
        ctx.emit(self.0..end);
        self.0 = end;
        Flow::Continue
    }

    /// `k` events beyond any demand (they go to the buffer).
    async fn handle_call(&mut self, k: i64, ctx: &mut StageContext<Self>) -> Reply<()> {
        ctx.emit(self.0..self.0 + k);
        self.0 += k;
        Reply::Reply(())
    }
}

/// Emits each event times two.
#[derive(Debug)]
pub struct Doubler;

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

/// Counts the events it takes.
#[derive(Debug)]
pub struct Counter(Arc<AtomicU64>);

impl GenStage for Counter {
    type Args = Arc<AtomicU64>;
    type In = i64;
    type Out = NoEvents;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(c: Arc<AtomicU64>, _ctx: &mut StageContext<Self>) -> Result<Init<Self>, Reason> {
        Ok(Init::consumer(Counter(c)))
    }

    async fn handle_events(
        &mut self,
        events: Vec<i64>,
        _from: Subscription,
        _ctx: &mut StageContext<Self>,
    ) -> Flow {
        self.0.fetch_add(events.len() as u64, Relaxed);
        Flow::Continue
    }
}

/// Starts producer → producer_consumer → consumer on `node`, subscribed
/// with `max_demand`; gives the consumer's count.
pub async fn pipeline(node: &Node, max_demand: usize) -> Arc<AtomicU64> {
    let counter = Arc::new(AtomicU64::new(0));
    let opts = || ergo::gen_stage::SubscribeOptions::new().max_demand(max_demand);
    let p = node.start_stage::<Numbers>(false).await.expect("numbers");
    let pc = node.start_stage::<Doubler>(()).await.expect("doubler");
    let c = node
        .start_stage::<Counter>(counter.clone())
        .await
        .expect("counter");
    pc.subscribe(&p, opts()).await.expect("doubler subscribes");
    c.subscribe(&pc, opts()).await.expect("counter subscribes");
    counter
}
