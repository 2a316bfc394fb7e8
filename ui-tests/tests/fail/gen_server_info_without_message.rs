use ergo::gen_server;

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[info]
    fn info(&mut self) {
        self.n += 1;
    }
}

fn main() {}
