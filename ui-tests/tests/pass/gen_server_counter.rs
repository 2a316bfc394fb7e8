use ergo::gen_server::Reply;
use ergo::{Node, Reason, gen_server};

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    async fn init(n: i64) -> Result<Self, Reason> {
        Ok(Counter { n })
    }

    #[call]
    async fn add(&mut self, n: i64) -> i64 {
        self.n += n;
        self.n
    }

    #[call]
    fn maybe(&self) -> Reply<i64> {
        Reply::Reply(self.n)
    }

    #[cast]
    fn reset(&mut self) {
        self.n = 0;
    }
}

async fn use_it(node: &Node) {
    let c = CounterRef::start(node, 1).await.unwrap();
    let _: Result<i64, ergo::CallError> = c.add(1).await;
    c.reset();
}

fn main() {
    let _ = use_it;
}
