use ergo::gen_stage;

struct Printer;

#[gen_stage(in = i64)]
impl Printer {
    #[init]
    fn init() -> ergo::gen_stage::Init<Self> {
        ergo::gen_stage::Init::consumer(Printer)
    }

    #[events]
    fn print(&mut self, events: Vec<i64>) {
        println!("{events:?}");
    }
}

fn main() {}
