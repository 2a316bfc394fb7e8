//! `#[connection]`: a line-echo handler written with the macro, served by
//! a daemon over a real socket on 127.0.0.1, echoes a TCP client's lines;
//! the test reaches a connection's process with the generated typed
//! client (calls and a cast that writes to the peer), and `#[closed]`
//! ends the connection when the peer hangs up.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use ergo::gen_server::Flow;
use ergo::net::{ConnContext, Connection, DaemonSpec};
use ergo::{Bytes, Node, Pid, Reason, ServerRef, connection};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Echoes each complete line; counts them. Each connection tells the test
/// its pid through the channel it is started with.
struct LineEcho {
    pending: BytesMut,
    lines: u64,
    peer: SocketAddr,
}

#[connection]
impl LineEcho {
    #[init]
    fn start(
        pids: mpsc::UnboundedSender<Pid>,
        peer: SocketAddr,
        ctx: &mut ConnContext<Self>,
    ) -> Result<Self, Reason> {
        pids.send(ctx.pid())
            .map_err(|_| Reason::atom("test_gone"))?;
        Ok(LineEcho {
            pending: BytesMut::new(),
            lines: 0,
            peer,
        })
    }

    #[data]
    async fn data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
        self.pending.extend_from_slice(&data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line = self.pending.split_to(end + 1);
            self.lines += 1;
            if ctx.write(&line).await.is_err() {
                return Flow::Stop(Reason::Normal);
            }
        }
        Flow::Continue
    }

    /// The peer hung up: nothing to do (the connection then ends).
    #[closed]
    fn closed(&mut self) {}

    /// How many lines it has echoed.
    #[call]
    fn lines(&self) -> u64 {
        self.lines
    }

    /// The peer's address, as the daemon gave it to `init`.
    #[call]
    fn peer(&self) -> String {
        self.peer.to_string()
    }

    /// Writes `text` to the peer as a line of its own.
    #[cast]
    async fn say(&mut self, text: String, ctx: &mut ConnContext<Self>) {
        let _ = ctx.write(format!("{text}\n")).await;
    }
}

fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost")).start().unwrap()
}

/// Reads one line from `s`, within 5 seconds.
async fn line(s: &mut BufReader<TcpStream>) -> String {
    let mut back = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut back))
        .await
        .expect("a line within 5 s")
        .unwrap();
    back
}

/// Connects to the daemon and waits for the connection's pid.
async fn connect(
    port: u16,
    pids: &mut mpsc::UnboundedReceiver<Pid>,
) -> (BufReader<TcpStream>, Pid) {
    let s = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let pid = tokio::time::timeout(Duration::from_secs(5), pids.recv())
        .await
        .expect("the connection's init runs within 5 s")
        .expect("the daemon is up");
    (s, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_macro_written_handler_echoes_lines_and_answers_typed_calls() {
    let node = node("conn_macro");
    let (pid_tx, mut pids) = mpsc::unbounded_channel();
    let (port_tx, port_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    // The daemon is linked to a process of its own, which lives until the
    // test is done.
    node.spawn(move |ctx| async move {
        let spec = DaemonSpec::<LineEcho>::new(pid_tx).ifaddr("127.0.0.1".parse().unwrap());
        let daemon = ergo::net::start(&ctx, spec)
            .await
            .expect("the daemon starts");
        port_tx
            .send(daemon.port().await.expect("the daemon answers"))
            .unwrap();
        let _ = done_rx.await;
        let _ = daemon.stop().await;
    });
    let port = tokio::time::timeout(Duration::from_secs(5), port_rx)
        .await
        .expect("the daemon listens within 5 s")
        .unwrap();

    let (mut s, pid) = connect(port, &mut pids).await;
    s.get_mut().write_all(b"hello\n").await.unwrap();
    assert_eq!(line(&mut s).await, "hello\n");
    // Two lines in one write, then a line split over two.
    s.get_mut().write_all(b"one\ntw").await.unwrap();
    assert_eq!(line(&mut s).await, "one\n");
    s.get_mut().write_all(b"o\n").await.unwrap();
    assert_eq!(line(&mut s).await, "two\n");

    // The typed client, from the test, on the connection's process.
    let conn = ServerRef::<Connection<LineEcho>>::new(&node, pid);
    assert_eq!(conn.lines().await.unwrap(), 3);
    assert_eq!(
        conn.peer_timeout(Duration::from_secs(5)).await.unwrap(),
        s.get_ref().local_addr().unwrap().to_string(),
        "init is given the peer's address"
    );
    conn.say("from the test".to_string());
    assert_eq!(line(&mut s).await, "from the test\n");

    // A second connection is a process of its own, with its own state.
    let (mut s2, pid2) = connect(port, &mut pids).await;
    assert_ne!(pid, pid2);
    s2.get_mut().write_all(b"second\n").await.unwrap();
    assert_eq!(line(&mut s2).await, "second\n");
    let conn2 = ServerRef::<Connection<LineEcho>>::new(&node, pid2);
    assert_eq!(conn2.lines().await.unwrap(), 1);
    assert_eq!(conn.lines().await.unwrap(), 3);

    // The peer hangs up: `#[closed]` returns nothing, so the connection
    // ends, normally.
    drop(s);
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.wait())
        .await
        .expect("the connection ends within 5 s");
    assert!(matches!(reason, Reason::Normal), "ended with {reason}");
    assert!(conn2.lines().await.is_ok(), "the other connection lives on");

    let _ = done_tx.send(());
}
