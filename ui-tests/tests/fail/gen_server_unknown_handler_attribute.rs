use ergo::gen_server;

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[calll]
    fn get(&self) -> i64 {
        self.n
    }
}

fn main() {}
