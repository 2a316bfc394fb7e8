//! EPMD, checked against Erlang/OTP itself: `erl` nodes register with
//! ergo's EPMD server and list what it holds; ergo's client registers with
//! Erlang's own `epmd`; the `epmd` binary stands in for Erlang's. Each test
//! uses its own port on 127.0.0.1.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use ergo::dist::epmd::{self, EpmdError, EpmdServer, NodeEntry, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{Reaped, erl_short, free_port};

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

async fn our_server(relaxed: bool) -> EpmdServer {
    EpmdServer::start(
        localhost(0),
        ServerOptions {
            relaxed_command_check: relaxed,
        },
    )
    .await
    .expect("bind")
}

/// Polls `check` until it holds, for up to 10 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Runs `erl -sname NAME@localhost` against the EPMD on `port`, evaluating
/// `eval`.
fn erl(port: u16, name: &str, eval: &str) -> std::process::Child {
    erl_short(port, name, "epmdtest", eval)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erl_node_registers_with_our_epmd_and_lists_our_registrations() {
    let server = our_server(false).await;
    let port = server.local_addr().port();
    let _reg = epmd::register(server.local_addr(), &NodeEntry::new("rustnode", 40123))
        .await
        .unwrap();
    // The erl node prints what the EPMD holds and where `rustnode` is, then
    // stays up until its stdin closes.
    let mut child = erl(
        port,
        "erlprobe",
        "{ok, Names} = net_adm:names(), io:format(\"~p~n~p~n\", [lists:sort(Names), erl_epmd:port_please(\"rustnode\", {127,0,0,1})]), io:get_line(''), halt().",
    );
    let server2 = server.clone();
    eventually("erlprobe has registered", async || {
        server2.names().iter().any(|(n, _)| n == "erlprobe")
    })
    .await;
    let (_, listed) = epmd::names(server.local_addr()).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["erlprobe", "rustnode"], "most recent first");
    let found = epmd::port_please(server.local_addr(), "erlprobe")
        .await
        .unwrap()
        .expect("erlprobe is registered");
    assert_eq!(found.highest_version, 6);
    assert!(found.port > 0);
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{{\"erlprobe\",{}}}", found.port))
            && text.contains("{\"rustnode\",40123}"),
        "erl's net_adm:names(): {text}"
    );
    assert!(text.contains("{port,40123,6}"), "erl's port_please: {text}");
    // Its connection closed with it: the name is free again.
    let server2 = server.clone();
    eventually("erlprobe has gone", async || {
        !server2.names().iter().any(|(n, _)| n == "erlprobe")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_registers_with_erlangs_own_epmd() {
    let port = free_port();
    let mut epmd_proc = Reaped(
        Command::new("epmd")
            .args(["-port", &port.to_string()])
            .spawn()
            .expect("Erlang's epmd on PATH"),
    );
    let addr = localhost(port);
    eventually("Erlang's epmd listens", async || {
        epmd::names(addr).await.is_ok()
    })
    .await;
    let mut entry = NodeEntry::new("rust_client", 41000);
    entry.extra = b"xyz".to_vec();
    let reg = epmd::register(addr, &entry).await.unwrap();
    assert_ne!(reg.creation(), 0);
    assert_eq!(
        epmd::port_please(addr, "rust_client").await.unwrap(),
        Some(entry.clone()),
        "epmd hands back exactly what was registered"
    );
    // A second registration of the name is refused while the first lives.
    match epmd::register(addr, &entry).await {
        Err(EpmdError::NameTaken(n)) => assert_eq!(n, "rust_client"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    let listing = Command::new("epmd")
        .args(["-port", &port.to_string(), "-names"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        text.contains("name rust_client at port 41000"),
        "epmd -names: {text}"
    );
    // Closing the connection unregisters.
    drop(reg);
    eventually("the name is gone", async || {
        matches!(epmd::port_please(addr, "rust_client").await, Ok(None))
    })
    .await;
    assert!(
        epmd::kill(addr).await.unwrap(),
        "no nodes left: kill is allowed"
    );
    let _ = epmd_proc.0.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_is_refused_until_its_holder_disconnects() {
    let server = our_server(false).await;
    let addr = server.local_addr();
    let first = epmd::register(addr, &NodeEntry::new("dup", 1))
        .await
        .unwrap();
    assert!(matches!(
        epmd::register(addr, &NodeEntry::new("dup", 2)).await,
        Err(EpmdError::NameTaken(_))
    ));
    drop(first);
    let mut second = None;
    eventually("the name can be taken again", async || {
        second = epmd::register(addr, &NodeEntry::new("dup", 2)).await.ok();
        second.is_some()
    })
    .await;
    let second = second.unwrap();
    assert_eq!(
        epmd::port_please(addr, "dup")
            .await
            .unwrap()
            .map(|e| e.port),
        Some(2)
    );
    // Creations differ between incarnations.
    let other = epmd::register(addr, &NodeEntry::new("other", 3))
        .await
        .unwrap();
    assert_ne!(second.creation(), other.creation());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_node_gets_the_old_answer_with_a_small_creation() {
    let server = our_server(false).await;
    let mut old = NodeEntry::new("old", 5000);
    old.highest_version = 5;
    let reg = epmd::register(server.local_addr(), &old).await.unwrap();
    assert!((1..=3).contains(&reg.creation()), "{}", reg.creation());
}

/// Sends raw bytes and reads whatever comes back until the server closes.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_dropped_and_the_server_keeps_serving() {
    let server = our_server(false).await;
    let addr = server.local_addr();
    let _reg = epmd::register(addr, &NodeEntry::new("keeper", 7))
        .await
        .unwrap();
    for bad in [
        &[0u8, 0][..],                              // empty request
        &[0xff, 0xff, b'x'][..],                    // longer than any request
        &[0, 1, b'Q'][..],                          // unknown request
        &[0, 4, b'x', 0, 1, 77][..],                // ALIVE2 cut short
        &[0, 9, b'x', 0, 1, 77, 0, 0, 6, 0, 5][..], // name length missing
        &[0, 5][..],                                // fewer bytes than announced
    ] {
        assert_eq!(raw(addr, bad).await, b"", "no answer to {bad:?}");
    }
    // A name with '@' is refused with the protocol's error answer.
    let mut bad_name = vec![b'x', 0, 1, 77, 0, 0, 6, 0, 5, 0, 3, b'a', b'@', b'b', 0, 0];
    let mut framed = (bad_name.len() as u16).to_be_bytes().to_vec();
    framed.append(&mut bad_name);
    assert_eq!(raw(addr, &framed).await, [b'v', 1, 0, 0, 0, 0]);
    let (_, names) = epmd::names(addr).await.unwrap();
    assert_eq!(names, [("keeper".to_string(), 7)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_stop_follow_erlangs_command_checks() {
    let strict = our_server(false).await;
    let reg = epmd::register(strict.local_addr(), &NodeEntry::new("alive", 9))
        .await
        .unwrap();
    assert!(
        !epmd::kill(strict.local_addr()).await.unwrap(),
        "a node is registered"
    );
    assert!(!epmd::stop_name(strict.local_addr(), "alive").await.unwrap());
    assert_eq!(strict.names().len(), 1);
    drop(reg);

    let relaxed = our_server(true).await;
    let mut reg = epmd::register(relaxed.local_addr(), &NodeEntry::new("alive", 9))
        .await
        .unwrap();
    assert!(
        epmd::stop_name(relaxed.local_addr(), "alive")
            .await
            .unwrap()
    );
    // The node learns it is no longer registered: its connection closes.
    tokio::time::timeout(Duration::from_secs(5), reg.closed())
        .await
        .expect("the registration connection closes");
    assert!(
        !epmd::stop_name(relaxed.local_addr(), "alive")
            .await
            .unwrap()
    );
    assert!(epmd::kill(relaxed.local_addr()).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), relaxed.stopped())
        .await
        .unwrap();
    assert!(
        epmd::names(relaxed.local_addr()).await.is_err(),
        "no longer listening"
    );
}

#[test]
fn the_epmd_binary_is_a_drop_in_for_erlangs() {
    let bin = env!("CARGO_BIN_EXE_epmd");
    let port = free_port();
    let p = port.to_string();
    let mut server = Reaped(Command::new(bin).args(["-port", &p]).spawn().unwrap());
    let up = Instant::now();
    while !Command::new(bin)
        .args(["-port", &p, "-names"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "our epmd never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // An erl node registers with it and stays until its stdin closes.
    let node = Reaped(erl(port, "binprobe", "io:get_line(''), halt()."));
    let mut listed = String::new();
    let until = Instant::now() + Duration::from_secs(20);
    while !listed.contains("name binprobe at port") {
        assert!(Instant::now() < until, "binprobe never listed: {listed}");
        std::thread::sleep(Duration::from_millis(50));
        // Erlang's own client reads our server.
        let out = Command::new("epmd")
            .args(["-port", &p, "-names"])
            .output()
            .unwrap();
        listed = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert!(
        listed.starts_with(&format!("epmd: up and running on port {port} with data:")),
        "{listed}"
    );
    let refused = Command::new(bin)
        .args(["-port", &p, "-kill"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim(),
        "Killing not allowed - living nodes in database."
    );
    drop(node);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(bin)
            .args(["-port", &p, "-kill"])
            .output()
            .unwrap();
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Killed");
            break;
        }
        assert!(Instant::now() < until, "kill never allowed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.0.wait().unwrap().success(),
        "a killed epmd exits cleanly"
    );
    let gone = Command::new(bin)
        .args(["-port", &p, "-names"])
        .output()
        .unwrap();
    assert!(!gone.status.success());
    assert_eq!(
        String::from_utf8_lossy(&gone.stderr).trim(),
        "epmd: Cannot connect to local epmd"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_no_epmd_around_hosts_one_that_erl_can_use() {
    let port = free_port();
    let a = epmd::publish(port, NodeEntry::new("host_a", 42001))
        .await
        .unwrap();
    assert!(a.hosts_epmd(), "nothing listened, so it hosts");
    let b = epmd::publish(port, NodeEntry::new("guest_b", 42002))
        .await
        .unwrap();
    assert!(!b.hosts_epmd(), "the first node's EPMD answered");
    assert!(matches!(
        epmd::publish(port, NodeEntry::new("host_a", 1)).await,
        Err(EpmdError::NameTaken(_))
    ));
    // Erlang's own tools find both.
    let out = Command::new("epmd")
        .args(["-port", &port.to_string(), "-names"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("name host_a at port 42001") && text.contains("name guest_b at port 42002"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_hosting_node_goes_another_takes_over_and_registers_again() {
    let port = free_port();
    let a = epmd::publish(port, NodeEntry::new("first", 43001))
        .await
        .unwrap();
    let b = epmd::publish(port, NodeEntry::new("second", 43002))
        .await
        .unwrap();
    assert!(a.hosts_epmd() && !b.hosts_epmd());
    drop(a);
    eventually(
        "the second node hosts and is registered again",
        async || {
            b.hosts_epmd()
                && b.registrations() == 2
                && matches!(
                    epmd::names(localhost(port)).await,
                    Ok((_, ref n)) if n == &[("second".to_string(), 43002)]
                )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_erlangs_epmd_dies_the_node_takes_over_its_port() {
    let port = free_port();
    let mut real = Reaped(
        Command::new("epmd")
            .args(["-port", &port.to_string()])
            .spawn()
            .expect("Erlang's epmd on PATH"),
    );
    eventually("Erlang's epmd listens", async || {
        epmd::names(localhost(port)).await.is_ok()
    })
    .await;
    let node = epmd::publish(port, NodeEntry::new("survivor", 44001))
        .await
        .unwrap();
    assert!(!node.hosts_epmd());
    real.0.kill().unwrap();
    let _ = real.0.wait();
    eventually(
        "the node hosts the port and is registered there",
        async || {
            node.hosts_epmd()
                && matches!(
                    epmd::port_please(localhost(port), "survivor").await,
                    Ok(Some(ref e)) if e.port == 44001
                )
        },
    )
    .await;
    // An erl node started now registers with the EPMD the node took over.
    let mut probe = Reaped(erl(port, "after_takeover", "io:get_line(''), halt()."));
    eventually("erl registered with the new EPMD", async || {
        matches!(
            epmd::port_please(localhost(port), "after_takeover").await,
            Ok(Some(_))
        )
    })
    .await;
    drop(probe.0.stdin.take());
}
