use ergo::gen_stage;

struct Numbers(i64);

#[gen_stage(out = i64)]
impl Numbers {
    #[init]
    fn init() -> ergo::gen_stage::Init<Self> {
        ergo::gen_stage::Init::producer(Numbers(0))
    }

    #[demand]
    fn next(&mut self, demand: usize) -> Vec<i64> {
        let events = (self.0..self.0 + demand as i64).collect();
        self.0 += demand as i64;
        events
    }

    // `StageRef::demand` already exists: the client's `demand` could not
    // be called.
    #[call]
    fn demand(&self) -> i64 {
        self.0
    }
}

fn main() {}
