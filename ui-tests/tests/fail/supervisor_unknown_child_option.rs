use ergo::gen_server;
use ergo::Child;

struct Counter;

#[gen_server]
impl Counter {
    fn init() -> Self {
        Counter
    }
}

#[ergo::supervisor(strategy = "one_for_one")]
struct Tree {
    #[child(restart = "sometimes")]
    counter: Child<Counter>,
    #[child(retries = 3)]
    other: Child<Counter>,
}

fn main() {}
