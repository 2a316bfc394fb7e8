use ergo::gen_server;

struct Counter {
    n: i64,
}

#[gen_server(crate = "my ergo")]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[call]
    fn get(&self) -> i64 {
        self.n
    }
}

fn main() {}
