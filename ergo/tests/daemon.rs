//! Daemons over real sockets on 127.0.0.1: many clients at once, a
//! crashing connection, the daemon killed under its supervisor, TLS with a
//! test CA and a certificate reload, the idle timeout, the connection
//! limit, back-pressure from a slow handler, and both ways of stopping.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ergo::gen_server::Flow;
use ergo::net::{ConnContext, DaemonRef, DaemonSpec, Handler, StopMode, TlsFiles};
use ergo::{Node, Reason, Restart, Strategy, SupervisorSpec, Term};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Echoes each complete line; `crash` makes it panic, `flood` keeps its
/// own mailbox from emptying (a message that sends itself again) until
/// `calm`, `slow` makes every chunk take 200 ms.
struct Lines {
    pending: BytesMut,
    slow: bool,
    flooding: bool,
}

impl Handler for Lines {
    type Args = bool;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        slow: bool,
        _peer: SocketAddr,
        _ctx: &mut ConnContext<Self>,
    ) -> Result<Self, Reason> {
        Ok(Lines {
            pending: BytesMut::new(),
            slow,
            flooding: false,
        })
    }

    async fn handle_data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
        if self.slow {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.pending.extend_from_slice(&data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line = self.pending.split_to(end + 1);
            if &line[..] == b"crash\n" {
                panic!("asked to crash");
            }
            if &line[..] == b"flood\n" && !self.flooding {
                self.flooding = true;
                let _ = ctx.send(ctx.pid(), Term::atom("again"));
            }
            if &line[..] == b"calm\n" {
                self.flooding = false;
            }
            if ctx.write(&line).await.is_err() {
                return Flow::Stop(Reason::Normal);
            }
        }
        Flow::Continue
    }

    async fn handle_info(&mut self, message: ergo::Message, ctx: &mut ConnContext<Self>) -> Flow {
        if message.to_term() == Some(Term::atom("again")) && self.flooding {
            // Gives the worker back each time (so that a starved socket
            // fails the test on its timeout rather than hanging it), with
            // the next message already sent before the loop looks again.
            tokio::task::yield_now().await;
            let _ = ctx.send(ctx.pid(), Term::atom("again"));
        }
        Flow::Continue
    }
}

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

/// Starts a daemon of [`Lines`] under a top supervisor; gives its handle.
async fn daemon(node: &Node, spec: DaemonSpec<Lines>) -> (DaemonRef<Lines>, ergo::SupRef) {
    let top = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne).child(ergo::net::child_spec("lines", spec)),
        )
        .await
        .unwrap();
    let d = daemon_of(node, &top).await;
    (d, top)
}

async fn daemon_of(node: &Node, top: &ergo::SupRef) -> DaemonRef<Lines> {
    let pid = top.which_children().await.unwrap()[0].pid.expect("running");
    DaemonRef::new(node, pid)
}

fn local() -> DaemonSpec<Lines> {
    DaemonSpec::new(false).ifaddr("127.0.0.1".parse().unwrap())
}

/// Sends `line` and reads the line that comes back.
async fn round<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>, line: &str) -> String {
    s.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut back = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut back))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    back
}

async fn connect(port: u16) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap())
}

/// Whether the server closed `s` (end of stream) within `t`.
async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, t: Duration) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(t, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_clients_each_get_their_own_lines_back() {
    let node = node("d_many");
    // On an address of its own: other tests here stop daemons and connect
    // to their ports afterwards, which the kernel may meanwhile give to
    // this daemon on 127.0.0.1; such a stray connection would stay open.
    let (d, _top) = daemon(
        &node,
        DaemonSpec::new(false).ifaddr("127.0.0.2".parse().unwrap()),
    )
    .await;
    let port = d.port().await.unwrap();
    assert_ne!(
        port, 0,
        "port 0 gives a free port, which the daemon reports"
    );
    let clients: Vec<_> = (0..1000)
        .map(|i| {
            tokio::spawn(async move {
                let mut s = BufReader::new(TcpStream::connect(("127.0.0.2", port)).await.unwrap());
                for j in 0..3 {
                    let line = format!("client {i} line {j}\n");
                    assert_eq!(round(&mut s, &line).await, line);
                }
                s
            })
        })
        .collect();
    let mut open = Vec::new();
    for c in clients {
        open.push(c.await.unwrap());
    }
    assert_eq!(d.connections().await.unwrap(), 1000);
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_their_clients_are_no_longer_counted_open() {
    let node = node("d_closed");
    let (d, _top) = daemon(&node, local()).await;
    let port = d.port().await.unwrap();
    let mut open = Vec::new();
    for i in 0..20 {
        let mut s = connect(port).await;
        let line = format!("{i}\n");
        assert_eq!(round(&mut s, &line).await, line);
        open.push(s);
    }
    assert_eq!(d.connections().await.unwrap(), 20);
    open.truncate(5);
    for _ in 0..250 {
        if d.connections().await.unwrap() == 5 {
            drop(open);
            for _ in 0..250 {
                if d.connections().await.unwrap() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "closed connections are still counted open: {}",
        d.connections().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_transient_connection_is_restarted_on_the_same_socket_and_others_never_notice() {
    let node = node("d_transient");
    let (d, _top) = daemon(&node, local().connection_restart(Restart::Transient)).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    let mut b = connect(port).await;
    assert_eq!(round(&mut a, "a1\n").await, "a1\n");
    assert_eq!(round(&mut b, "b1\n").await, "b1\n");
    a.get_mut().write_all(b"crash\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The restarted process serves the same connection.
    assert_eq!(round(&mut a, "a2\n").await, "a2\n");
    assert_eq!(round(&mut b, "b2\n").await, "b2\n");
    assert_eq!(d.connections().await.unwrap(), 2);
}

/// The reader reads one chunk ahead of its process: a chunk read while the
/// process was crashing is handed to the process that takes the
/// connection over, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sent_while_a_transient_connection_crashes_reaches_its_restarted_process() {
    let node = node("d_ahead");
    // Slow handlers: each chunk takes 200 ms, so the line sent 50 ms after
    // `crash` is read while the process is still on its way to crashing.
    let spec = DaemonSpec::new(true)
        .ifaddr("127.0.0.1".parse().unwrap())
        .connection_restart(Restart::Transient);
    let (d, _top) = daemon(&node, spec).await;
    let port = d.port().await.unwrap();
    for round_no in 0..2 {
        let mut a = connect(port).await;
        assert_eq!(round(&mut a, "before\n").await, "before\n");
        a.get_mut().write_all(b"crash\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.get_mut().write_all(b"after\n").await.unwrap();
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(5), a.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("round {round_no}: the line sent during the crash was lost"))
            .unwrap();
        assert_eq!(line, "after\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_temporary_connection_is_closed_and_others_never_notice() {
    let node = node("d_temporary");
    let (d, _top) = daemon(&node, local()).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    let mut b = connect(port).await;
    assert_eq!(round(&mut a, "a1\n").await, "a1\n");
    a.get_mut().write_all(b"crash\n").await.unwrap();
    assert!(
        closed_within(&mut a, Duration::from_secs(5)).await,
        "its socket closes"
    );
    assert_eq!(round(&mut b, "b1\n").await, "b1\n");
    // The socket closes as the process stops; the count follows once it
    // has ended.
    for _ in 0..250 {
        if d.connections().await.unwrap() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the crashed connection is still counted open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_is_restarted_by_its_supervisor_and_clients_reconnect() {
    let node = node("d_killed");
    // A fixed port, so that the restarted daemon listens where it did.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let (d, top) = daemon(&node, local().port(port)).await;
    let mut a = connect(port).await;
    assert_eq!(round(&mut a, "before\n").await, "before\n");
    let old = d.pid().unwrap();
    node.exit(node.system_pid(), old, Reason::Kill);
    assert!(
        closed_within(&mut a, Duration::from_secs(5)).await,
        "its connections go with it"
    );
    // Wait for the supervisor's new daemon before connecting: until it
    // listens, the port is free, and a connection could reach any other
    // program that happens to bind it meanwhile.
    let mut again = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let running = top.which_children().await.unwrap()[0].pid;
        if running.is_none() || running == Some(old) {
            continue;
        }
        if daemon_of(&node, &top).await.port().await.ok() == Some(port) {
            again = Some(BufReader::new(
                TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            ));
            break;
        }
    }
    let mut a = again.expect("the restarted daemon accepts");
    assert_eq!(round(&mut a, "after\n").await, "after\n");
    let d2 = daemon_of(&node, &top).await;
    assert_ne!(d2.pid().unwrap(), old);
    assert_eq!(d2.port().await.unwrap(), port);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let node = node("d_idle");
    let (d, _top) = daemon(&node, local().idle_timeout(Duration::from_millis(300))).await;
    let port = d.port().await.unwrap();
    let mut busy = connect(port).await;
    let mut idle = connect(port).await;
    for i in 0..6 {
        let line = format!("{i}\n");
        assert_eq!(round(&mut busy, &line).await, line);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(2)).await,
        "the idle one is closed"
    );
    assert_eq!(round(&mut busy, "still\n").await, "still\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_limit_is_closed_at_once_and_room_frees_up() {
    let node = node("d_limit");
    let (d, _top) = daemon(&node, local().max_connections(2)).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    let mut b = connect(port).await;
    assert_eq!(round(&mut a, "a\n").await, "a\n");
    assert_eq!(round(&mut b, "b\n").await, "b\n");
    let mut c = connect(port).await;
    assert!(
        closed_within(&mut c, Duration::from_secs(2)).await,
        "refused: closed"
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = connect(port).await;
    assert_eq!(round(&mut c, "c\n").await, "c\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_slows_its_client_instead_of_filling_memory() {
    let node = node("d_slow");
    let (d, _top) = daemon(
        &node,
        DaemonSpec::new(true).ifaddr("127.0.0.1".parse().unwrap()),
    )
    .await;
    let port = d.port().await.unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // 64 MiB with no newline: a server that read ahead would take it all
    // in well under a second; one that reads a chunk per handled chunk
    // (200 ms each) cannot.
    let big = vec![b'x'; 64 << 20];
    let done = tokio::time::timeout(Duration::from_secs(2), s.write_all(&big)).await;
    assert!(
        done.is_err(),
        "the write must stall: the server reads only as fast as it handles"
    );
}

/// Socket data and messages share a connection process as they share a
/// mailbox in Erlang: a process whose mailbox never empties still reads
/// its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_mailbox_never_empties_still_reads_its_socket() {
    let node = node("d_flood");
    let (d, _top) = daemon(&node, local()).await;
    let mut c = connect(d.port().await.unwrap()).await;
    assert_eq!(round(&mut c, "flood\n").await, "flood\n");
    for i in 0..20 {
        let line = format!("line {i}\n");
        assert_eq!(round(&mut c, &line).await, line);
    }
    assert_eq!(round(&mut c, "calm\n").await, "calm\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_stop_lets_open_connections_finish_and_refuses_new_ones() {
    let node = node("d_drain");
    let spec = local().stop_mode(StopMode::Drain(Duration::from_secs(5)));
    let d = ergo_daemon(&node, spec).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    assert_eq!(round(&mut a, "1\n").await, "1\n");
    let stopping = {
        let d = d.clone();
        tokio::spawn(async move { d.stop().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still served while draining; no new connection is taken.
    assert_eq!(round(&mut a, "2\n").await, "2\n");
    if let Ok(mut late) = TcpStream::connect(("127.0.0.1", port)).await {
        assert!(
            closed_within(&mut late, Duration::from_secs(2)).await,
            "not served"
        );
    }
    assert!(!stopping.is_finished(), "it waits for the open connection");
    drop(a);
    tokio::time::timeout(Duration::from_secs(3), stopping)
        .await
        .expect("the stop ends once the connection has")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_stop_closes_every_connection_at_once() {
    let node = node("d_immediate");
    let d = ergo_daemon(&node, local().stop_mode(StopMode::Immediate)).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    assert_eq!(round(&mut a, "1\n").await, "1\n");
    tokio::time::timeout(Duration::from_secs(2), d.stop())
        .await
        .expect("at once")
        .unwrap();
    assert!(closed_within(&mut a, Duration::from_secs(2)).await);
}

/// A daemon started by a plain process (no supervisor above it).
async fn ergo_daemon(node: &Node, spec: DaemonSpec<Lines>) -> DaemonRef<Lines> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn(move |ctx| async move {
        let d = ergo::net::start(&ctx, spec).await.unwrap();
        let _ = tx.send(d);
        // Lives as long as the test needs it.
        std::future::pending::<Reason>().await
    });
    rx.await.unwrap()
}

/// A CA, and a server certificate for 127.0.0.1 signed by it, as PEM
/// files in `dir`; gives (ca, cert, key) paths.
fn test_ca(
    dir: &std::path::Path,
    tag: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let p = |n: &str| dir.join(format!("{tag}_{n}.pem"));
    std::fs::write(p("ca"), ca.pem()).unwrap();
    std::fs::write(p("cert"), cert.pem()).unwrap();
    std::fs::write(p("key"), key.serialize_pem()).unwrap();
    (p("ca"), p("cert"), p("key"))
}

async fn tls_client(
    port: u16,
    ca: &std::path::Path,
) -> std::io::Result<BufReader<tokio_rustls::client::TlsStream<TcpStream>>> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    Ok(BufReader::new(tls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_serves_lines_and_a_reloaded_certificate_takes_effect() {
    let dir = std::env::temp_dir().join(format!("ergo-daemon-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca1, cert, key) = test_ca(&dir, "one");
    let node = node("d_tls");
    let (d, _top) = daemon(&node, local().tls(TlsFiles::new(&cert, &key))).await;
    let port = d.port().await.unwrap();
    let mut c = tls_client(port, &ca1).await.unwrap();
    assert_eq!(round(&mut c, "over tls\n").await, "over tls\n");
    // A plain TCP client gets nothing echoed.
    let mut plain = connect(port).await;
    plain.get_mut().write_all(b"plain\n").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(12), plain.read_to_end(&mut got))
        .await
        .expect("the server closes a connection that is not TLS")
        .ok();
    assert!(
        !got.windows(5).any(|w| w == b"plain"),
        "no TLS, no service: {got:?}"
    );
    // A new certificate from another CA, written over the files, then
    // reloaded: new clients need the new CA; the open one carries on.
    let (ca2, cert2, key2) = test_ca(&dir, "two");
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    d.reload_tls().await.unwrap();
    assert!(
        tls_client(port, &ca1).await.is_err(),
        "the old CA no longer matches"
    );
    let mut c2 = tls_client(port, &ca2).await.unwrap();
    assert_eq!(round(&mut c2, "renewed\n").await, "renewed\n");
    assert_eq!(round(&mut c, "still\n").await, "still\n");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Term::NIL;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_under_a_supervisor_of_the_users_outlive_their_daemon() {
    let node = node("d_given_sup");
    let conns = node
        .start_supervisor(ergo::net::connection_supervisor(
            Restart::Temporary,
            ergo::Shutdown::Timeout(Duration::from_secs(5)),
        ))
        .await
        .unwrap();
    let spec = local()
        .supervisor(conns.clone())
        .stop_mode(StopMode::Drain(Duration::ZERO));
    let d = ergo_daemon(&node, spec).await;
    let port = d.port().await.unwrap();
    let mut a = connect(port).await;
    let mut b = connect(port).await;
    assert_eq!(round(&mut a, "a\n").await, "a\n");
    assert_eq!(round(&mut b, "b\n").await, "b\n");
    assert_eq!(
        conns.count_children().await.unwrap().active,
        2,
        "they are the user's supervisor's children"
    );
    d.stop().await.unwrap();
    // No new connection is taken, and the open ones carry on.
    if let Ok(mut late) = TcpStream::connect(("127.0.0.1", port)).await {
        assert!(closed_within(&mut late, Duration::from_secs(2)).await);
    }
    assert_eq!(round(&mut a, "still\n").await, "still\n");
    drop(b);
    for _ in 0..200 {
        if conns.count_children().await.unwrap().active == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a closed connection leaves the user's supervisor");
}

/// The `daemon` example as a user runs it, over TLS:
/// `daemon --port 0 --tls-certfile F --tls-keyfile F` prints `port N`, and
/// a TLS client's lines come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_example_serves_lines_over_tls_with_its_certificate_flags() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("ergo-daemon-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = test_ca(&dir, "example");
    let mut child = std::process::Command::new(common::example("daemon"))
        .args(["--port", "0", "--tls-certfile"])
        .arg(&cert)
        .arg("--tls-keyfile")
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the daemon example runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("expected `port N`, got {line:?}"));
    let mut c = tls_client(port, &ca).await.unwrap();
    assert_eq!(round(&mut c, "over tls\n").await, "over tls\n");
    assert_eq!(round(&mut c, "again\n").await, "again\n");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
