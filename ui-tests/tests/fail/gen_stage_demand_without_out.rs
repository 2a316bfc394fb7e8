use ergo::gen_stage;

struct Printer;

// A consumer (no `out`) emits nothing, so no consumer ever asks it for
// events.
#[gen_stage]
impl Printer {
    #[init]
    fn init() -> ergo::gen_stage::Init<Self> {
        ergo::gen_stage::Init::consumer(Printer)
    }

    #[events]
    fn print(&mut self, events: Vec<i64>) {
        println!("{events:?}");
    }

    #[demand]
    fn demand(&mut self, demand: usize) -> Vec<i64> {
        vec![0; demand]
    }
}

fn main() {}
