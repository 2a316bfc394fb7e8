//! The distribution handshake, between two ergo sides and with real `erl`
//! nodes on 127.0.0.1 in both directions: right cookies connect, a wrong
//! cookie is refused on both sides with `BadCookie`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Reaped, SHORT_HOST, erl_short};

use ergo::dist::epmd::{self, EpmdServer, NodeEntry, ServerOptions};
use ergo::dist::handshake::{self, HandshakeError, Local, flags};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What ergo offers: everything OTP 25–27 require, plus monitors.
const OFFER: u64 =
    flags::MANDATORY_25 | flags::MANDATORY_26 | flags::DIST_MONITOR | flags::DIST_MONITOR_NAME;

fn local(name: &str, cookie: &str, published: bool) -> Local {
    Local {
        name: name.to_string(),
        cookie: cookie.to_string(),
        flags: if published {
            OFFER | flags::PUBLISHED
        } else {
            OFFER
        },
        creation: 0x1234_5678,
    }
}

async fn pair(
    a_cookie: &str,
    b_cookie: &str,
    version: u16,
) -> (
    Result<handshake::Peer, HandshakeError>,
    Result<handshake::Peer, HandshakeError>,
) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b = local("b@localhost", b_cookie, true);
    let acceptor = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let r = handshake::accept(&mut s, &b).await;
        drop(s);
        r
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    let a = local("a@localhost", a_cookie, false);
    let initiated = handshake::initiate(&mut s, &a, version).await;
    drop(s);
    (initiated, acceptor.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ergo_sides_with_the_same_cookie_learn_each_others_name_flags_and_creation() {
    for version in [6, 5] {
        let (a, b) = pair("secret", "secret", version).await;
        let seen_by_a = a.unwrap();
        let seen_by_b = b.unwrap();
        assert_eq!(seen_by_a.name, "b@localhost");
        assert!(!seen_by_a.hidden());
        assert_eq!(seen_by_a.flags, OFFER | flags::PUBLISHED);
        assert_eq!(seen_by_b.name, "a@localhost");
        assert!(seen_by_b.hidden(), "a connected as a hidden node");
        // With the version-5 start, the complement carries the creation.
        assert_eq!(seen_by_b.creation, 0x1234_5678, "version {version}");
        assert_eq!(seen_by_b.flags, OFFER, "version {version}");
        if version == 6 {
            assert_eq!(seen_by_a.creation, 0x1234_5678);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_on_both_sides() {
    let (a, b) = pair("secret", "other", 6).await;
    assert!(matches!(a, Err(HandshakeError::BadCookie)), "{a:?}");
    assert!(matches!(b, Err(HandshakeError::BadCookie)), "{b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_is_a_protocol_error() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b = local("b@localhost", "c", true);
    let acceptor = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        handshake::accept(&mut s, &b).await
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, &[0, 3, b'N', 0, 0])
        .await
        .unwrap();
    let r = acceptor.await.unwrap();
    assert!(matches!(r, Err(HandshakeError::Protocol(_))), "{r:?}");
}

/// Starts `erl -sname NAME@localhost -setcookie COOKIE` against the EPMD
/// on `port`, evaluating `eval`.
fn erl(port: u16, name: &str, cookie: &str, eval: &str) -> Reaped {
    Reaped(erl_short(port, name, cookie, eval))
}

async fn first_line(child: &mut Reaped) -> String {
    let out = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(tokio::process::ChildStdout::from_std(out).unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("erl printed in time")
        .unwrap()
        .unwrap_or_default()
}

async fn wait_registered(addr: SocketAddr, name: &str) -> NodeEntry {
    for _ in 0..500 {
        if let Ok(Some(e)) = epmd::port_please(addr, name).await {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ergo_connects_to_an_erl_node_which_lists_it_as_hidden() {
    let server = EpmdServer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let host = SHORT_HOST;
    let mut node = erl(
        port,
        "hs_target",
        "hscookie",
        "Wait = fun W() -> case nodes(hidden) of [] -> timer:sleep(20), W(); Ns -> Ns end end, io:format(\"~p~n\", [Wait()]), io:get_line(''), halt().",
    );
    let entry = wait_registered(server.local_addr(), "hs_target").await;
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, entry.port))
        .await
        .unwrap();
    let me = local(&format!("rusths@{host}"), "hscookie", false);
    let peer = handshake::initiate(&mut s, &me, entry.highest_version)
        .await
        .unwrap();
    assert_eq!(peer.name, format!("hs_target@{host}"));
    assert!(!peer.hidden());
    assert_ne!(peer.creation, 0);
    assert_eq!(
        peer.flags & (flags::MANDATORY_25 | flags::MANDATORY_26),
        flags::MANDATORY_25 | flags::MANDATORY_26
    );
    assert_eq!(first_line(&mut node).await, format!("[rusths@{host}]"));
}

/// Registers `ours` with the EPMD `server` on a fresh listener, starts
/// `erl -sname theirs@localhost` running `net_kernel:connect_node(ours@host)` (it
/// prints the result), and gives the connection it made, the erl node and
/// the registration (which must live while erl looks the name up).
async fn erl_connects_to(
    server: &EpmdServer,
    ours: &str,
    theirs: &str,
    cookie: &str,
) -> (TcpStream, Reaped, epmd::Registration) {
    let host = SHORT_HOST;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let lport = listener.local_addr().unwrap().port();
    let reg = epmd::register(server.local_addr(), &NodeEntry::new(ours, lport))
        .await
        .unwrap();
    let caller = erl(
        server.local_addr().port(),
        theirs,
        cookie,
        &format!(
            "io:format(\"~p~n\", [net_kernel:connect_node('{ours}@{host}')]), io:get_line(''), halt()."
        ),
    );
    let (conn, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("erl connected in time")
        .unwrap();
    (conn, caller, reg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erl_node_with_another_cookie_is_refused_and_refuses() {
    let server = EpmdServer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let host = SHORT_HOST;
    let _node = erl(port, "hs_guard", "right", "io:get_line(''), halt().");
    let entry = wait_registered(server.local_addr(), "hs_guard").await;
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, entry.port))
        .await
        .unwrap();
    let me = local(&format!("intruder@{host}"), "wrong", false);
    let r = handshake::initiate(&mut s, &me, entry.highest_version).await;
    assert!(matches!(r, Err(HandshakeError::BadCookie)), "{r:?}");

    // And the other way: erl, with the wrong cookie, connecting to ergo.
    let (mut conn, mut caller, _reg) =
        erl_connects_to(&server, "hs_rust", "hs_caller", "wrong").await;
    let me = local(&format!("hs_rust@{host}"), "right", true);
    let r = handshake::accept(&mut conn, &me).await;
    assert!(matches!(r, Err(HandshakeError::BadCookie)), "{r:?}");
    drop(conn);
    assert_eq!(first_line(&mut caller).await, "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erl_node_connects_to_ergo() {
    let server = EpmdServer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let host = SHORT_HOST;
    let (mut conn, mut caller, _reg) =
        erl_connects_to(&server, "hs_acceptor", "hs_erl", "shared").await;
    let me = local(&format!("hs_acceptor@{host}"), "shared", true);
    let peer = handshake::accept(&mut conn, &me).await.unwrap();
    assert_eq!(peer.name, format!("hs_erl@{host}"));
    assert!(!peer.hidden());
    assert_ne!(peer.creation, 0);
    // erl's connect_node returns once the handshake is done.
    assert_eq!(first_line(&mut caller).await, "true");
}
