use ergo::gen_server;
use ergo::Node;

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[call]
    fn get(&self) -> i64 {
        self.n
    }
}

struct Other;

#[gen_server]
impl Other {
    fn init() -> Self {
        Other
    }

    #[call]
    fn ping(&self) -> bool {
        true
    }
}

async fn use_it(node: &Node) {
    let counter = CounterRef::start(node, 1).await.unwrap();
    // A request of another server's type does not fit this server.
    let wait = std::time::Duration::from_secs(1);
    let _ = counter.server().call_map(OtherCall::Ping, wait, |_| Some(0_i64)).await;
}

fn main() {
    let _ = use_it;
}
