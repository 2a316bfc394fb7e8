use ergo::etf::{Atom, FromTerm, Term, ToTerm};
use ergo::gen_server::{Flow, Reply};
use ergo::gen_stage::{
    Cancel, Demand, Init, Role, StageContext, StageRef, SubscribeOptions, Subscription,
};
use ergo::{Message, Node, Reason, gen_stage};

/// A producer generic over its events: emits its value, again and again.
struct Repeat<T> {
    value: T,
}

#[gen_stage(out = T)]
impl<T> Repeat<T>
where
    T: Clone + ToTerm + FromTerm + Send + 'static,
{
    #[init]
    fn init(value: T) -> Init<Self> {
        Init::producer(Repeat { value }).buffer_size(100)
    }

    #[demand]
    async fn demand(&mut self, demand: usize, ctx: &mut StageContext<Self>) -> Flow {
        ctx.emit(std::iter::repeat_n(self.value.clone(), demand));
        Flow::Continue
    }

    #[call]
    fn get(&self) -> T {
        self.value.clone()
    }

    #[cast]
    fn set(&mut self, value: T) {
        self.value = value;
    }

    #[format_discarded]
    fn discarded(&mut self, excess: usize) -> bool {
        excess > 10
    }
}

/// A consumer with every other handler.
struct Sink {
    count: usize,
}

#[gen_stage]
impl Sink {
    async fn init(
        start: usize,
        _tag: String,
        ctx: &mut StageContext<Self>,
    ) -> Result<Init<Self>, Reason> {
        let _ = ctx.pid();
        Ok(Init::consumer(Sink { count: start }))
    }

    #[subscribe]
    fn subscribe_to_producer(
        &mut self,
        from: Subscription,
        opts: &[(Atom, Term)],
        role: Role,
    ) -> Result<Demand, Reason> {
        let _ = (from, opts);
        match role {
            Role::Producer => Ok(Demand::Automatic),
            Role::Consumer => Err(Reason::atom("not_a_producer")),
        }
    }

    #[events]
    fn events(&mut self, events: Vec<i64>) {
        self.count += events.len();
    }

    #[cancel]
    async fn cancelled(
        &mut self,
        from: Subscription,
        cancel: Cancel,
        ctx: &mut StageContext<Self>,
    ) -> Flow {
        let _ = (from, ctx);
        Flow::Stop(cancel.reason().clone())
    }

    #[info]
    fn info(&mut self, message: Message) {
        let _ = message;
    }

    /// How many events so far; `Reply<T>` can stop the stage.
    #[call]
    fn count(&self, stop: bool) -> Reply<u64> {
        if stop {
            Reply::Stop(Reason::Normal, Some(self.count as u64))
        } else {
            Reply::Reply(self.count as u64)
        }
    }

    #[cast]
    fn reset(&mut self) {
        self.count = 0;
    }

    #[format_status]
    fn status(&self) -> u64 {
        self.count as u64
    }

    #[terminate]
    fn terminate(&mut self, reason: &Reason) {
        let _ = reason;
    }
}

fn assert_send<F: Send>(f: F) -> F {
    f
}

async fn use_it(node: &Node) {
    let repeat: StageRef<Repeat<i64>> = node.start_stage::<Repeat<i64>>(7).await.unwrap();
    let sink = node
        .start_stage::<Sink>((0, "sink".to_string()))
        .await
        .unwrap();
    let _ = sink
        .subscribe(&repeat, SubscribeOptions::new().max_demand(10))
        .await;
    let _: Result<i64, ergo::CallError> = assert_send(repeat.get()).await;
    repeat.set(8);
    let _: Result<u64, ergo::CallError> = assert_send(sink.count(false)).await;
    let _ = sink
        .count_timeout(true, std::time::Duration::from_secs(1))
        .await;
    sink.reset();
}

fn main() {
    let _ = use_it;
}
