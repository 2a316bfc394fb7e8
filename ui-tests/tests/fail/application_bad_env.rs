#[ergo::application(name = "bad_env", env(port = [1, 2]))]
struct App;

impl ergo::Application for App {
    fn supervisor() -> ergo::SupervisorSpec {
        ergo::SupervisorSpec::new(ergo::Strategy::OneForOne)
    }
}

fn main() {}
