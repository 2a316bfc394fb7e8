use ergo::gen_stage;

struct Printer;

#[gen_stage]
impl Printer {
    #[events]
    fn print(&mut self, events: Vec<i64>) {
        println!("{events:?}");
    }
}

fn main() {}
