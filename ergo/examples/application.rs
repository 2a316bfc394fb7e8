//! The Ergo seed's demoApplication scenario, in ergo for Rust.
//!
//! `demo_app` depends on `demo_base`, carries its own environment, and runs
//! a `one_for_one` supervision tree declared with `#[supervisor]`. The demo
//! loads both applications, starts `demo_app` with its dependency, lets a
//! server read the application's environment, kills one server (only that
//! one is restarted, as `one_for_one` dictates), and stops the application
//! (its servers stop last-started first).
//!
//! ```text
//! cargo run --example application
//! ```

use std::time::Duration;

use ergo::application::StartType;
use ergo::gen_server::ServerContext;
use ergo::{Child, Node, Reason, Strategy, SupervisorSpec, gen_server};

/// A server that says when it starts and stops, and what its application
/// has configured.
#[derive(Debug)]
struct DemoServer {
    name: String,
}

#[gen_server]
impl DemoServer {
    fn init(name: String, ctx: &mut ServerContext<Self>) -> Self {
        // Trapping exits lets `terminate` run when the supervisor stops it.
        ctx.set_trap_exit(true);
        let app = ctx.application().map(|a| a.to_string());
        let port = ctx.get_env("listen_port").map(|t| t.to_string());
        println!(
            "  {name}: started as {} in {} (listen_port = {})",
            ctx.pid(),
            app.as_deref().unwrap_or("no application"),
            port.as_deref().unwrap_or("unset"),
        );
        DemoServer { name }
    }

    #[terminate]
    fn terminate(&mut self, reason: &Reason) {
        println!("  {}: terminated ({reason})", self.name);
    }
}

/// `demo_app`'s tree: both servers are registered under their field names.
#[ergo::supervisor(strategy = "one_for_one", intensity = 3, period = 5)]
struct DemoSup {
    #[child(register)]
    demo_server01: Child<DemoServer>,
    #[child(register)]
    demo_server02: Child<DemoServer>,
}

/// The application the demo starts.
#[ergo::application(
    name = "demo_app",
    description = "the demo application",
    version = "1.0.0",
    applications = ["demo_base"],
    env(listen_port = 8080, greeting = "hello")
)]
struct DemoApp;

impl ergo::Application for DemoApp {
    fn supervisor() -> SupervisorSpec {
        DemoSup {
            demo_server01: Child::new("demo_server01".to_string()),
            demo_server02: Child::new("demo_server02".to_string()),
        }
        .spec()
    }
}

/// The application `demo_app` depends on: started first.
#[ergo::application(
    name = "demo_base",
    description = "what demo_app needs",
    version = "1.0.0"
)]
struct DemoBase;

impl ergo::Application for DemoBase {
    fn supervisor() -> SupervisorSpec {
        SupervisorSpec::new(Strategy::OneForOne)
    }
}

fn show_apps(node: &Node) {
    for app in node.which_applications() {
        println!("    {} {} \"{}\"", app.name, app.version, app.description);
    }
}

fn show_servers(node: &Node) {
    for name in ["demo_server01", "demo_server02"] {
        match node.whereis(name) {
            Some(pid) => println!("    {name} -> {pid}"),
            None => println!("    {name} -> not running"),
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
    node.load_application(DemoBase::spec())
        .expect("not loaded yet");
    node.load_application(DemoApp::spec())
        .expect("not loaded yet");
    println!("Loaded applications:");
    let mut loaded = node.loaded_applications();
    loaded.sort_by_key(|a| a.name.to_string());
    for app in loaded {
        println!("    {} {}", app.name, app.version);
    }

    println!("Starting demo_app (temporary) and what it depends on:");
    let started = node
        .ensure_all_started("demo_app", StartType::Temporary)
        .await
        .expect("the tree starts");
    let names: Vec<String> = started.iter().map(|a| a.to_string()).collect();
    println!("  started {}", names.join(", "));
    settle().await;
    println!("Running applications:");
    show_apps(&node);
    println!(
        "demo_app's greeting: {}",
        node.get_env("demo_app", "greeting")
            .map(|t| t.to_string())
            .unwrap_or_default()
    );

    let victim = node.whereis("demo_server01").expect("registered");
    println!("Killing demo_server01 ({victim}); one_for_one restarts it alone:");
    node.exit(victim, victim, Reason::Kill);
    settle().await;
    show_servers(&node);

    println!("Stopping demo_app:");
    node.stop_application("demo_app")
        .await
        .expect("it is running");
    show_servers(&node);
    println!("Running applications:");
    show_apps(&node);

    node.stop(Duration::from_secs(1)).await;
}
