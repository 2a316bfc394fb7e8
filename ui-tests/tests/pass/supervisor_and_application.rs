use ergo::gen_server;
use ergo::{Child, Node};

struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[call]
    fn get(&self) -> i64 {
        self.n
    }
}

#[ergo::supervisor(strategy = "one_for_all", intensity = 5, period = 30)]
struct Inner {
    #[child(register, restart = "transient", shutdown = 500)]
    counter: Child<Counter>,
}

#[ergo::supervisor]
struct Top {
    first: Child<Counter>,
    #[child(shutdown = "infinity")]
    inner: Inner,
}

#[ergo::application(name = "ui_app", version = "1.0.0", env(limit = 10, label = "x"))]
struct App;

impl ergo::Application for App {
    fn supervisor() -> ergo::SupervisorSpec {
        Top {
            first: Child::new(1),
            inner: Inner {
                counter: Child::new(2),
            },
        }
        .spec()
    }
}

async fn run(node: &Node) {
    let _ = node.load_application(App::spec());
}

fn main() {
    let _ = run;
}
