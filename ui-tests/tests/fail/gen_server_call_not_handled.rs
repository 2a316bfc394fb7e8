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

async fn use_it(node: &Node) {
    let counter = CounterRef::start(node, 1).await.unwrap();
    // Counter serves no `add` call.
    let _ = counter.add(5).await;
}

fn main() {
    let _ = use_it;
}
