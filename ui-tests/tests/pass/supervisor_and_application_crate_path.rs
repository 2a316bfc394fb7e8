//! `crate = "..."` on all three attribute macros: the generated code reaches
//! the runtime through the re-export only. `ergo` itself stays a dependency,
//! so the proof is `unused_imports`: were the re-export not used by the
//! generated code, it would be an unused import, denied here.
#![deny(unused_imports)]

mod facade {
    pub(crate) use ergo as runtime;
}

mod servers {
    pub struct Counter {
        n: i64,
    }

    #[ergo::gen_server(crate = "crate::facade::runtime")]
    impl Counter {
        fn init(n: i64) -> Self {
            Counter { n }
        }

        #[call]
        fn get(&self) -> i64 {
            self.n
        }

        #[cast]
        fn bump(&mut self, by: i64) {
            self.n += by;
        }
    }
}

use ergo::Child;

#[ergo::supervisor(crate = "facade::runtime", strategy = "one_for_all")]
struct Top {
    #[child(restart = "transient", shutdown = 100)]
    counter: Child<servers::Counter>,
}

#[ergo::application(name = "crate_path_app", crate = "facade::runtime")]
struct App;

impl ergo::Application for App {
    fn supervisor() -> ergo::SupervisorSpec {
        Top {
            counter: Child::new(1),
        }
        .spec()
    }
}

async fn run(node: &ergo::Node) {
    let _ = node.load_application(App::spec());
    let c = servers::CounterRef::start(node, 1).await.unwrap();
    c.bump(2);
    let _: Result<i64, ergo::CallError> = c.get().await;
}

fn main() {
    let _ = run;
}
