use ergo::gen_server;

struct Counter {
    n: i64,
}

#[gen_server(name = "counter")]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }
}

fn main() {}
