use ergo::gen_stage;

struct Printer;

#[gen_stage]
impl Printer {
    #[init]
    fn init() -> ergo::gen_stage::Init<Self> {
        ergo::gen_stage::Init::consumer(Printer)
    }

    #[events]
    fn print(&mut self, event: i64, from: ergo::gen_stage::Subscription) {
        println!("{event} from {from}");
    }
}

fn main() {}
