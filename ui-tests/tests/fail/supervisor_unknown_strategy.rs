use ergo::gen_server;
use ergo::Child;

struct Counter;

#[gen_server]
impl Counter {
    fn init() -> Self {
        Counter
    }
}

#[ergo::supervisor(strategy = "one_for_some")]
struct Tree {
    counter: Child<Counter>,
}

fn main() {}
