//! The daemon figures of `daemon_vs_erlang.sh`: echo servers (an ergo
//! daemon, a bare tokio server) and the load that measures any echo server
//! on 127.0.0.1, the Erlang one included.
//!
//! ```text
//! daemon_side serve-ergo PORT     # an ergo daemon echoing what it reads
//! daemon_side serve-tokio PORT    # a task per connection, read then write
//! daemon_side load PORT SECS LABEL       # 100 connections, 64-byte lines
//! daemon_side load16 PORT SECS LABEL     # the same, 16 lines in flight each
//! daemon_side burst PORT N LABEL         # N connections accepted in a burst
//! ```
//!
//! Servers print `ready` once they listen; the loads print `name value
//! unit` lines (`load` and `load16` also the lines of their whole life, as
//! `LABEL_lines`, for the script's CPU time per line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ergo::gen_server::Flow;
use ergo::net::{ConnContext, DaemonSpec, Handler};
use ergo::{Node, Reason};
use ergo_benches::out;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Writes back what it reads.
struct Echo;

impl Handler for Echo {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(
        _: (),
        _peer: std::net::SocketAddr,
        _ctx: &mut ConnContext<Self>,
    ) -> Result<Self, Reason> {
        Ok(Echo)
    }

    async fn handle_data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
        match ctx.write(&data).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop(Reason::Normal),
        }
    }
}

async fn serve_ergo(port: u16) {
    let node = Node::builder("daemon_bench@localhost").start().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn(move |ctx| async move {
        let spec = DaemonSpec::<Echo>::new(())
            .port(port)
            .ifaddr("127.0.0.1".parse().unwrap());
        let d = ergo::net::start(&ctx, spec)
            .await
            .expect("the daemon starts");
        let _ = tx.send(d);
        std::future::pending::<Reason>().await
    });
    let _d = rx.await.unwrap();
    println!("ready");
    std::future::pending::<()>().await;
}

async fn serve_tokio(port: u16) {
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    println!("ready");
    loop {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

const LINE: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";

/// 100 connections, each writing `depth` 64-byte lines at once and reading
/// them back, over and over: echoed lines per second.
async fn load(port: u16, secs: f64, label: &str, depth: usize) {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (count, stop) = (count.clone(), stop.clone());
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = s.set_nodelay(true);
        tasks.push(tokio::spawn(async move {
            let lines = LINE.repeat(depth);
            // Read into twice the room the answer needs: a read that does
            // not fill its buffer tells tokio the socket is empty, so the
            // next wait costs no system call. (`read_exact` of just the
            // answer's length made one more read per round, to hear
            // "nothing yet": load on the shared cores that every server
            // measured here paid for alike.)
            let mut back = vec![0u8; 2 * lines.len()];
            while !stop.load(Relaxed) {
                s.write_all(&lines).await.unwrap();
                let mut got = 0;
                while got < lines.len() {
                    match s.read(&mut back[got..]).await.unwrap() {
                        0 => panic!("the server closed the connection"),
                        n => got += n,
                    }
                }
                assert_eq!(got, lines.len(), "one answer per round");
                count.fetch_add(depth as u64, Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c0 = count.load(Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let n = count.load(Relaxed) - c0;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    out(label, rate.round(), "msgs/s");
    // Every line of the load's life, warm-up included: what the script
    // divides the server's CPU time over the same life by.
    out(
        &format!("{label}_lines"),
        count.load(Relaxed) as f64,
        "lines",
    );
}

/// `n` connections, 200 at a time: each connects, has one line echoed and
/// closes. Connections per second.
async fn burst(port: u16, n: usize, label: &str) {
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..200)
        .map(|_| {
            let next = next.clone();
            tokio::spawn(async move {
                let mut back = [0u8; 64];
                while next.fetch_add(1, Relaxed) < n as u64 {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    s.write_all(LINE).await.unwrap();
                    s.read_exact(&mut back).await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    out(
        label,
        (n as f64 / t0.elapsed().as_secs_f64()).round(),
        "conns/s",
    );
}

// As many workers as the CPUs it may run on (two here; one when the script
// pins it to a core), as `erl` starts as many schedulers.
#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |i: usize| {
        args.get(i)
            .and_then(|p| p.parse::<u16>().ok())
            .expect("a port")
    };
    match args.first().map(String::as_str) {
        Some("serve-ergo") => serve_ergo(port(1)).await,
        Some("serve-tokio") => serve_tokio(port(1)).await,
        Some("load") => load(port(1), args[2].parse().unwrap(), &args[3], 1).await,
        Some("load16") => load(port(1), args[2].parse().unwrap(), &args[3], 16).await,
        Some("burst") => burst(port(1), args[2].parse().unwrap(), &args[3]).await,
        _ => {
            eprintln!(
                "usage: daemon_side serve-ergo PORT | serve-tokio PORT | load PORT SECS LABEL | load16 PORT SECS LABEL | burst PORT N LABEL"
            );
            std::process::exit(2);
        }
    }
}
