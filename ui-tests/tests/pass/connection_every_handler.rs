use std::net::SocketAddr;
use std::time::Duration;

use ergo::etf::{FromTerm, ToTerm};
use ergo::gen_server::{Flow, Reply};
use ergo::net::{ConnContext, Connection, DaemonSpec};
use ergo::{Bytes, Context, Message, Node, Reason, ServerRef, connection};

/// A line counter with every handler: `init` takes its start arguments,
/// the peer and the context in an order of its own.
struct Counter {
    peer: SocketAddr,
    prefix: String,
    limit: u64,
    lines: u64,
}

#[connection]
impl Counter {
    #[init]
    async fn start(
        prefix: String,
        peer: SocketAddr,
        limit: u64,
        ctx: &mut ConnContext<Self>,
    ) -> Result<Self, Reason> {
        ctx.write(format!("{prefix} hello {peer}\n"))
            .await
            .map_err(|_| Reason::Normal)?;
        Ok(Counter {
            peer,
            prefix,
            limit,
            lines: 0,
        })
    }

    #[data]
    async fn data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
        self.lines += data.iter().filter(|b| **b == b'\n').count() as u64;
        if self.lines > self.limit {
            ctx.close().await;
            return Flow::Stop(Reason::Normal);
        }
        match ctx.write(&data).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop(Reason::Normal),
        }
    }

    #[closed]
    fn closed(&mut self) -> Flow {
        Flow::Continue
    }

    /// How many lines so far; `Reply<T>` can stop the connection.
    #[call]
    fn lines(&self, stop: bool) -> Reply<u64> {
        if stop {
            Reply::Stop(Reason::Normal, Some(self.lines))
        } else {
            Reply::Reply(self.lines)
        }
    }

    #[call]
    fn peer(&self) -> String {
        self.peer.to_string()
    }

    #[cast]
    async fn say(&mut self, text: String, ctx: &mut ConnContext<Self>) {
        let _ = ctx.write(format!("{} {text}\n", self.prefix)).await;
    }

    #[info]
    fn info(&mut self, message: Message) {
        let _ = message;
    }

    #[terminate]
    fn terminate(&mut self, reason: &Reason) {
        let _ = reason;
    }
}

/// The least a connection needs: a start function without arguments and
/// a `#[data]` handler; `#[closed]` returning nothing ends it.
struct Sink;

#[connection]
impl Sink {
    fn init() -> Self {
        Sink
    }

    #[data]
    fn data(&mut self, data: Bytes) {
        let _ = data;
    }

    #[closed]
    async fn closed(&mut self, ctx: &mut ConnContext<Self>) {
        let _ = ctx.pid();
    }
}

/// Generic over its tag; `init` takes the peer alone besides its one
/// argument (anonymous) and returns `Self`.
struct Tagged<T> {
    tag: T,
}

#[connection]
impl<T> Tagged<T>
where
    T: Clone + Sync + ToTerm + FromTerm + Send + 'static,
{
    fn init(tag: T, _: SocketAddr) -> Self {
        Tagged { tag }
    }

    #[data]
    fn data(&mut self, data: Bytes) {
        let _ = data;
    }

    #[call]
    fn tag(&self) -> T {
        self.tag.clone()
    }

    #[cast]
    fn retag(&mut self, tag: T) {
        self.tag = tag;
    }
}

fn assert_send<F: Send>(f: F) -> F {
    f
}

async fn use_it(node: &Node, ctx: &Context, pid: ergo::Pid) {
    let _ = ergo::net::start(
        ctx,
        DaemonSpec::<Counter>::new(("> ".to_string(), 10)).ifaddr("127.0.0.1".parse().unwrap()),
    )
    .await;
    let _ = ergo::net::start(ctx, DaemonSpec::<Sink>::new(())).await;
    let _ = ergo::net::start(ctx, DaemonSpec::<Tagged<i64>>::new(7)).await;
    let counter = ServerRef::<Connection<Counter>>::new(node, pid);
    let _: Result<u64, ergo::CallError> = assert_send(counter.lines(false)).await;
    let _: Result<String, ergo::CallError> =
        assert_send(counter.peer_timeout(Duration::from_secs(1))).await;
    counter.say("hi".to_string());
    let tagged = ServerRef::<Connection<Tagged<i64>>>::new(node, pid);
    let _: Result<i64, ergo::CallError> = tagged.tag().await;
    tagged.retag(8);
}

fn main() {
    let _ = use_it;
}
