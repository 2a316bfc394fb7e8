#[ergo::application(description = "no name given")]
struct App;

impl ergo::Application for App {
    fn supervisor() -> ergo::SupervisorSpec {
        ergo::SupervisorSpec::new(ergo::Strategy::OneForOne)
    }
}

fn main() {}
