//! The Ergo seed's demoSupervisor scenario, in ergo for Rust.
//!
//! A `one_for_all` supervisor runs three servers: a temporary one, a
//! permanent one and a transient one. When the permanent one is killed, the
//! strategy stops the others (last started first), drops the temporary one
//! (temporary children are never restarted), and starts the rest again in
//! order. Then the transient one stops normally and is not restarted.
//!
//! ```text
//! cargo run --example supervisor
//! ```

use std::time::Duration;

use ergo::gen_server::Reply;
use ergo::{ChildSpec, Node, Reason, Restart, Strategy, SupervisorSpec, gen_server};

/// A demo server that says when it starts and stops.
#[derive(Debug)]
struct DemoServer {
    name: String,
}

#[gen_server]
impl DemoServer {
    fn init(name: String, ctx: &mut ergo::gen_server::ServerContext<Self>) -> Self {
        // Trapping exits lets `terminate` run when the supervisor stops it.
        ctx.set_trap_exit(true);
        println!("  {name}: started as {}", ctx.pid());
        DemoServer { name }
    }

    /// Stops with a normal exit.
    #[call]
    fn finish(&mut self) -> Reply<bool> {
        Reply::Stop(Reason::Normal, Some(true))
    }

    #[terminate]
    fn terminate(&mut self, reason: &Reason) {
        println!("  {}: terminated ({reason})", self.name);
    }
}

fn child(name: &str, restart: Restart) -> ChildSpec {
    ChildSpec::named_server::<DemoServer>(name, name, name.to_string()).restart(restart)
}

async fn show(sup: &ergo::SupRef) {
    for c in sup.which_children().await.expect("supervisor alive") {
        match c.pid {
            Some(pid) => println!("    {} -> {pid}", c.id),
            None => println!("    {} -> not running", c.id),
        }
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::main]
async fn main() {
    ergo::logger::init();
    let node = Node::builder("demo@localhost")
        .start()
        .expect("a valid node name");
    println!("Starting demo_sup (one_for_all, at most 2 restarts in 5 s):");
    println!(
        "  children: demo_server01 (temporary), demo_server02 (permanent), demo_server03 (transient)"
    );
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(2, Duration::from_secs(5))
        .child(child("demo_server01", Restart::Temporary))
        .child(child("demo_server02", Restart::Permanent))
        .child(child("demo_server03", Restart::Transient));
    let sup = node.start_supervisor(spec).await.expect("children start");
    settle().await;
    println!("Children:");
    show(&sup).await;

    let victim = node.whereis("demo_server02").expect("registered");
    println!("Killing demo_server02 ({victim}):");
    println!("  one_for_all: the others stop, the temporary demo_server01 is not restarted:");
    node.exit(victim, victim, Reason::Kill);
    settle().await;
    println!("Children after the restart:");
    show(&sup).await;

    println!("demo_server03 stops normally (transient: not restarted):");
    let s03 = node.whereis("demo_server03").expect("registered");
    let _ = DemoServerRef::from(ergo::ServerRef::new(&node, s03))
        .finish()
        .await;
    settle().await;
    show(&sup).await;

    println!("Stopping the node:");
    node.stop(Duration::from_secs(1)).await;
}
