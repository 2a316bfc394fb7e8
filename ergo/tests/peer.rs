//! Peer nodes against real OTP 25: a Rust origin starting `erl` peers over
//! each connection kind (distribution, TCP, standard I/O) with nothing of
//! ours on the `erl` side, and an `erl` origin starting the ergo peer
//! (`interop_node`) with OTP's own `peer:start_link/1`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Erl, example, free_port};
use ergo::peer::{
    CallFailure, Connection, PeerDown, PeerError, PeerOptions, PeerState, Shutdown, WaitBoot,
};
use ergo::{Atom, Node, Term};

/// An ergo node in this process, distributed, with its EPMD on `epmd`.
async fn origin(name: &str, epmd: u16) -> Node {
    common::dist_node(name, "peercookie", epmd).await
}

/// Collects a peer's console output.
fn capture() -> (Arc<Mutex<String>>, impl Fn(&str) + Send + Sync + 'static) {
    let text = Arc::new(Mutex::new(String::new()));
    let t = text.clone();
    (text, move |s: &str| t.lock().unwrap().push_str(s))
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn tcp() -> Connection {
    Connection::Tcp {
        ip: Some("127.0.0.1".parse().unwrap()),
        port: 0,
    }
}

/// Starts an `erl` peer over `connection`, calls, casts, sends and reads
/// its output, and stops it.
async fn erl_peer_round(tag: &str, connection: Connection) {
    let epmd = free_port();
    let node = origin(&format!("o_{tag}"), epmd).await;
    let (out, sink) = capture();
    let peer = ergo::peer::start(
        &node,
        PeerOptions::new()
            .name(format!("p_{tag}"))
            .connection(connection.clone())
            .env("ERL_EPMD_PORT", epmd.to_string())
            .output(sink),
    )
    .await
    .unwrap();
    let peer_name = Atom::from(format!("p_{tag}@127.0.0.1").as_str());
    assert_eq!(peer.node(), Some(peer_name));
    assert_eq!(peer.state().await.unwrap(), PeerState::Running);
    let t = Duration::from_secs(5);
    assert_eq!(
        peer.call("erlang", "node", vec![], t).await.unwrap(),
        Term::Atom(peer_name)
    );
    assert_eq!(
        peer.call("lists", "seq", vec![Term::Int(1), Term::Int(3)], t)
            .await
            .unwrap(),
        Term::List(vec![Term::Int(1), Term::Int(2), Term::Int(3)])
    );
    // A function that raises: its class and reason come back.
    match peer
        .call("erlang", "error", vec![Term::atom("boom")], t)
        .await
    {
        Err(CallFailure::Raised { class, reason, .. }) => {
            assert_eq!((class.as_str(), reason), ("error", Term::atom("boom")));
        }
        other => panic!("expected error:boom, got {other:?}"),
    }
    // Console output of the peer reaches the origin (io:format runs on the
    // peer, its group leader being the peer's `user`).
    peer.cast(
        "io",
        "format",
        vec![
            Term::charlist("hello from ~p~n"),
            Term::List(vec![Term::Atom(peer_name)]),
        ],
    );
    // `Atom`'s Display quotes the way `~p` does.
    let want = format!("hello from {peer_name}\n");
    until("the peer's output", || out.lock().unwrap().contains(&want)).await;
    peer.stop().await.unwrap();
    until("the peer's node to go", || {
        !node.dist().nodes().contains(&peer_name)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_origin_controls_an_erl_peer_over_standard_io() {
    erl_peer_round("stdio", Connection::StandardIo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_origin_controls_an_erl_peer_over_tcp() {
    erl_peer_round("tcp", tcp()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_origin_controls_an_erl_peer_over_distribution() {
    erl_peer_round("dist", Connection::Distribution).await;
}

/// Whether the OS process `pid` has ended (gone, or a zombie waiting for
/// its parent).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn until_gone(pid: &str) {
    let p = pid.to_string();
    until(&format!("OS process {pid} to end"), move || gone(&p)).await;
}

/// The OS pid of a peer, asked over its control connection.
async fn os_pid(peer: &ergo::peer::Peer) -> String {
    match peer
        .call("os", "getpid", vec![], Duration::from_secs(5))
        .await
        .unwrap()
    {
        Term::List(cs) => cs
            .iter()
            .map(|c| match c {
                Term::Int(d) => char::from(*d as u8),
                _ => '?',
            })
            .collect(),
        other => panic!("os:getpid gave {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shutdown_mode_ends_an_erl_peer() {
    let epmd = free_port();
    let node = origin("o_shut", epmd).await;
    let t = Duration::from_secs(5);
    let cases = [
        ("close", Connection::StandardIo, Shutdown::Close),
        ("halt", tcp(), Shutdown::Halt(Some(Duration::from_secs(2)))),
        (
            "stop",
            Connection::Distribution,
            Shutdown::Stop(Some(Duration::from_secs(5))),
        ),
        ("halt_dist", Connection::Distribution, Shutdown::default()),
        (
            "stop_tcp",
            tcp(),
            Shutdown::Stop(Some(Duration::from_secs(5))),
        ),
        ("close_dist", Connection::Distribution, Shutdown::Close),
    ];
    for (tag, connection, shutdown) in cases {
        let peer = ergo::peer::start(
            &node,
            PeerOptions::new()
                .name(format!("p_{tag}"))
                .connection(connection)
                .shutdown(shutdown)
                .env("ERL_EPMD_PORT", epmd.to_string())
                .output(|_| {}),
        )
        .await
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
        let pid = os_pid(&peer).await;
        assert!(!gone(&pid), "{tag}");
        let _ = t;
        peer.stop().await.unwrap();
        until_gone(&pid).await;
        let name = peer.node().unwrap();
        until("the connection to go", || {
            !node.dist().nodes().contains(&name)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_ends_when_the_process_that_started_it_linked_ends() {
    let epmd = free_port();
    let node = origin("o_link", epmd).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let options = PeerOptions::new()
        .name("p_link")
        .connection(Connection::StandardIo)
        .env("ERL_EPMD_PORT", epmd.to_string())
        .output(|_| {});
    let owner = node.spawn(move |ctx: ergo::Context| async move {
        let peer = ergo::peer::start_link(&ctx, options).await.unwrap();
        let pid = os_pid(&peer).await;
        let _ = tx.send((pid, peer.pid()));
        // The owner ends, abnormally: its link takes the controller, and
        // the controller takes the peer.
        ergo::Reason::atom("owner_done")
    });
    let (os, controller) = rx.await.unwrap();
    node.wait_exit(owner).await;
    node.wait_exit(controller).await;
    until_gone(&os).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_boot_in_time_or_fails_to_boot_is_reported() {
    let epmd = free_port();
    let node = origin("o_boot", epmd).await;
    // A program that never connects back.
    let slow = ergo::peer::start(
        &node,
        PeerOptions::new()
            .exec("sh", &["-c", "sleep 3", "sh"])
            .connection(tcp())
            .wait_boot(WaitBoot::Timeout(Duration::from_millis(500))),
    )
    .await;
    assert_eq!(slow.unwrap_err(), PeerError::Timeout);
    // A program that exits at once.
    let failing = ergo::peer::start(
        &node,
        PeerOptions::new()
            .exec("sh", &["-c", "exit 3", "sh"])
            .connection(Connection::StandardIo),
    )
    .await;
    assert_eq!(
        failing.unwrap_err(),
        PeerError::BootFailed(Term::tuple([Term::atom("exit_status"), Term::Int(3)]))
    );
    // A program that cannot be run.
    let missing = ergo::peer::start(
        &node,
        PeerOptions::new()
            .exec("/nonexistent/erl", &[])
            .connection(Connection::StandardIo),
    )
    .await;
    assert!(matches!(missing, Err(PeerError::Exec(why)) if why.contains("/nonexistent/erl")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_down_continue_keeps_the_controller_with_the_reason() {
    let epmd = free_port();
    let node = origin("o_down", epmd).await;
    let peer = ergo::peer::start(
        &node,
        PeerOptions::new()
            .connection(Connection::StandardIo)
            .peer_down(PeerDown::Continue)
            .output(|_| {}),
    )
    .await
    .unwrap();
    // No name: a peer without distribution.
    assert_eq!(peer.node(), Some(Atom::from("nonode@nohost")));
    peer.cast("erlang", "halt", vec![Term::Int(7)]);
    for _ in 0..100 {
        if matches!(peer.state().await.unwrap(), PeerState::Down(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        peer.state().await.unwrap(),
        PeerState::Down(Term::tuple([Term::atom("exit_status"), Term::Int(7)]))
    );
    // The controller is still there; calls say there is no connection.
    assert_eq!(
        peer.call("erlang", "node", vec![], Duration::from_secs(1))
            .await,
        Err(CallFailure::Error(Term::atom("noconnection")))
    );
    peer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_origin_controls_the_ergo_peer_binary() {
    let epmd = free_port();
    let node = origin("o_ergo", epmd).await;
    let exe = example("interop_node");
    for (tag, connection) in [
        ("s", Connection::StandardIo),
        ("t", tcp()),
        ("d", Connection::Distribution),
    ] {
        let peer = ergo::peer::start(
            &node,
            PeerOptions::new()
                .name(format!("ergo_{tag}"))
                .exec(exe.to_str().unwrap(), &[])
                .connection(connection)
                .shutdown(Shutdown::Stop(Some(Duration::from_secs(5))))
                .env("ERL_EPMD_PORT", epmd.to_string())
                .output(|_| {}),
        )
        .await
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
        let t = Duration::from_secs(5);
        assert_eq!(
            peer.call("interop", "add", vec![Term::Int(40), Term::Int(2)], t)
                .await
                .unwrap(),
            Term::Int(42),
            "{tag}"
        );
        match peer.call("interop", "nope", vec![], t).await {
            Err(CallFailure::Raised { class, reason, .. }) => {
                assert_eq!(
                    (class.as_str(), reason),
                    ("error", Term::atom("undef")),
                    "{tag}"
                );
            }
            other => panic!("{tag}: expected error:undef, got {other:?}"),
        }
        let pid = os_pid(&peer).await;
        peer.stop().await.unwrap();
        until_gone(&pid).await;
    }
}

/// An `erl` node that starts ergo peers with OTP's own `peer` module.
fn erl_origin(tag: &str) -> (Erl, u16, String) {
    let epmd = free_port();
    let e = Erl::start(&format!("eo_{tag}"), "pc", epmd, &[]);
    let exe = example("interop_node").to_str().unwrap().to_string();
    (e, epmd, exe)
}

#[test]
fn an_erl_origin_starts_the_ergo_peer_over_each_connection_and_calls_rust_functions() {
    let (mut e, _epmd, exe) = erl_origin("calls");
    for (tag, conn) in [
        ("s", "connection => standard_io, "),
        ("t", "connection => {{127,0,0,1}, 0}, "),
        ("d", ""),
    ] {
        let started = e.eval(&format!(
            "{{ok, P{tag}, N{tag}}} = peer:start_link(#{{exec => \"{exe}\", name => \"rp{tag}\", \
             host => \"127.0.0.1\", {conn}args => [\"-setcookie\", \"pc\"]}}), N{tag}"
        ));
        assert_eq!(started, format!("'rp{tag}@127.0.0.1'"));
        assert_eq!(e.eval(&format!("peer:get_state(P{tag})")), "running");
        let call = if tag == "d" {
            // OTP's `peer:call` has no control connection over
            // distribution; erpc reaches the same function.
            format!("erpc:call(N{tag}, interop, add, [40, 2])")
        } else {
            format!("peer:call(P{tag}, interop, add, [40, 2])")
        };
        assert_eq!(e.eval(&call), "42", "{tag}");
        if tag != "d" {
            // An unknown function raises undef in the caller, as with erl.
            assert_eq!(
                e.eval(&format!(
                    "try peer:call(P{tag}, interop, nope, []) catch C:R -> {{C, R}} end"
                )),
                "{error,undef}"
            );
            // A cast, and a message to a registered process on the peer
            // (`echo` answers over distribution: the peer has a name).
            assert_eq!(
                e.eval(&format!("peer:cast(P{tag}, interop, add, [1, 2])")),
                "ok"
            );
            assert_eq!(
                e.eval(&format!("peer:send(P{tag}, echo, {{self(), hi}}), receive {{echo, hi}} -> got after 5000 -> none end")),
                "got",
                "{tag}"
            );
        }
        assert_eq!(e.eval(&format!("peer:stop(P{tag})")), "ok");
    }
}

#[test]
fn an_erl_origin_stops_the_ergo_peer_by_each_shutdown_mode_and_sees_it_killed() {
    let (mut e, _epmd, exe) = erl_origin("shut");
    let cases = [
        ("c", "connection => standard_io, shutdown => close, "),
        (
            "h",
            "connection => {{127,0,0,1}, 0}, shutdown => {halt, 2000}, ",
        ),
        ("s", "connection => standard_io, shutdown => 3000, "),
        ("dh", "shutdown => halt, "),
        ("ds", "shutdown => 3000, "),
        ("dc", "shutdown => close, "),
    ];
    for (tag, opts) in cases {
        assert_eq!(
            e.eval(&format!(
                "{{ok, P{tag}, N{tag}}} = peer:start_link(#{{exec => \"{exe}\", name => \"rs{tag}\", \
                 host => \"127.0.0.1\", {opts}args => [\"-setcookie\", \"pc\"]}}), ok"
            )),
            "ok"
        );
        let pid = e.eval(&format!("erpc:call(N{tag}, os, getpid, [])"));
        let pid = pid.trim_matches('"').to_string();
        assert!(!gone(&pid), "{tag}");
        assert_eq!(e.eval(&format!("peer:stop(P{tag})")), "ok", "{tag}");
        for _ in 0..200 {
            if gone(&pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(gone(&pid), "{tag}: the ergo peer {pid} is still running");
    }
    // Killed: the controller says why, with peer_down => continue.
    for (tag, conn, want) in [
        (
            "ks",
            "connection => standard_io, ",
            "{down,{exit_status,137}}",
        ),
        (
            "kt",
            "connection => {{127,0,0,1}, 0}, ",
            "{down,tcp_closed}",
        ),
    ] {
        assert_eq!(
            e.eval(&format!(
                "{{ok, P{tag}, N{tag}}} = peer:start_link(#{{exec => \"{exe}\", name => \"rk{tag}\", \
                 host => \"127.0.0.1\", {conn}peer_down => continue, args => [\"-setcookie\", \"pc\"]}}), ok"
            )),
            "ok"
        );
        let pid = e.eval(&format!("peer:call(P{tag}, os, getpid, [])"));
        let pid = pid.trim_matches('"').to_string();
        std::process::Command::new("sh")
            .args(["-c", &format!("kill -9 {pid}")])
            .status()
            .unwrap();
        let state = e.eval(&format!(
            "(fun W(0) -> peer:get_state(P{tag}); W(I) -> case peer:get_state(P{tag}) of running -> timer:sleep(50), W(I - 1); S -> S end end)(100)"
        ));
        assert_eq!(state, want, "{tag}");
    }
}
