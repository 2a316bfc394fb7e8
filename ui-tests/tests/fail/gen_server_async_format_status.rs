use ergo::gen_server;

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    /// The state is read between callbacks, so it cannot wait.
    #[format_status]
    async fn status(&self, verbose: bool) -> i64 {
        if verbose { self.n } else { 0 }
    }
}

fn main() {}
