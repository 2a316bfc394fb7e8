//! What becomes of the name service when a Rust node that started it stops:
//! by default the EPMD it hosts goes with it, and a warning names the nodes
//! that can no longer be found by name; with `WhenNoEpmd::Daemon` the node
//! starts a daemon instead, as `erl` does, and Erlang nodes stay reachable
//! by name after the Rust node is gone.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Erl, free_port};
use ergo::Node;
use ergo::dist::epmd::WhenNoEpmd;

/// The log lines of this test binary, kept for the assertions.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> Log {
    let log = Log::default();
    let out = log.clone();
    let _ = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .try_init();
    log
}

async fn node(name: &str, epmd: u16, when: WhenNoEpmd) -> Node {
    common::dist_node_with(name, "handoff", epmd, |o| o.when_no_epmd = when).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_hosted_epmd_goes_with_the_node_and_a_warning_names_who_loses_it() {
    let log = capture();
    let port = free_port();
    let a = node("host_a", port, WhenNoEpmd::Host).await;
    // `-start_epmd false`: the Erlang nodes use the EPMD they find, and
    // start none of their own.
    let e1 = Erl::start("host_e1", "handoff", port, &["-start_epmd", "false"]);
    let mut e2 = Erl::start("host_e2", "handoff", port, &["-start_epmd", "false"]);
    assert_eq!(e2.eval(&format!("net_adm:ping('{}')", e1.name)), "pong");
    a.stop(Duration::from_secs(1)).await;
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    assert!(
        text.contains("stopping the EPMD this node hosts") && text.contains("host_e1"),
        "no warning names the nodes that lose their EPMD:\n{text}"
    );
    // As the warning says: e1 can no longer be found by name (a fresh
    // connection asks EPMD, and none answers).
    assert_eq!(
        e2.eval(&format!("erlang:disconnect_node('{}')", e1.name)),
        "true"
    );
    assert_eq!(e2.eval(&format!("net_adm:ping('{}')", e1.name)), "pang");
    drop(e1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_daemon_the_name_service_outlives_the_rust_node() {
    let port = free_port();
    let when = WhenNoEpmd::daemon().expect("the workspace's epmd binary is built beside the tests");
    let WhenNoEpmd::Daemon(program) = &when else {
        unreachable!("daemon() gives a Daemon")
    };
    // However the test ends, the daemon started for its port is stopped.
    let _daemon = KillDaemon(program.clone(), port);
    let b = node("daemon_b", port, when.clone()).await;
    let e1 = Erl::start("daemon_e1", "handoff", port, &["-start_epmd", "false"]);
    let mut e2 = Erl::start("daemon_e2", "handoff", port, &["-start_epmd", "false"]);
    assert_eq!(e2.eval(&format!("net_adm:ping({})", b.name())), "pong");
    b.stop(Duration::from_secs(1)).await;
    drop(b);
    // The Rust node is gone; the Erlang nodes still find each other by name.
    assert_eq!(e2.eval(&format!("net_adm:ping('{}')", e1.name)), "pong");
    let names =
        e2.eval("{ok, Ns} = erl_epmd:names(\"127.0.0.1\"), lists:sort([N || {N, _} <- Ns])");
    assert_eq!(names, "[\"daemon_e1\",\"daemon_e2\"]");
    drop((e1, e2));
}

/// Stops the EPMD daemon on a port (`epmd -kill -port N`) when dropped.
struct KillDaemon(std::path::PathBuf, u16);

impl Drop for KillDaemon {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.0)
            .args(["-kill", "-port", &self.1.to_string()])
            .output();
    }
}
