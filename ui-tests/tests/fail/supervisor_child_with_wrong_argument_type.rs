use ergo::gen_server;
use ergo::Child;

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

#[ergo::supervisor(strategy = "one_for_one")]
struct Tree {
    counter: Child<Counter>,
}

fn main() {
    // The counter starts from an i64; a string is not its start argument.
    let _ = Tree {
        counter: Child::new("seven"),
    };
}
