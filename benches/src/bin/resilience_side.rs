//! Issue 16's resilience figures, Rust side of `resilience.sh`:
//!
//! - `flood_rss_growth_kib_{bounded,unbounded}` (KiB) and
//!   `flood_sent_mib_{bounded,unbounded}` (MiB): a process floods a frozen
//!   `erl` peer (SIGSTOP) with 64 KiB binaries for SECONDS; the node's
//!   resident memory growth and what the sender got to send, with the
//!   default `dist_buf_busy_limit` (1 MiB: the sender is suspended) and with
//!   no limit (as before back-pressure: the queue grows with every
//!   message);
//! - `call_idle_p50_us`, `call_idle_p99_us`, `call_burst_p50_us`,
//!   `call_burst_p99_us`, `call_burst_max_us` (µs): a well-behaved node's
//!   calls to this node's echo, sequential, idle and then while another OS
//!   process (this binary with `--attack`) makes 1,000 connection attempts
//!   with a wrong cookie and 1,000 with garbage for a handshake, as fast as
//!   it can;
//! - `call_floor_p50_us`, `call_floor_p99_us` (µs): the same calls while the
//!   attacker aims the same burst at a listener in its own process (the
//!   share of the two cores the attacker and the kernel take, with no work
//!   for the node).
//!
//! ```text
//! resilience_side SECONDS            (runs every figure; needs erl on PATH)
//! resilience_side --burst SECONDS    (the call figures only)
//! resilience_side --attack PORT      (the attacker)
//! ```

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ergo::dist::DistOptions;
use ergo::dist::handshake::{self, Local};
use ergo::{Atom, Node, Term};
use ergo_benches::dist::TermEcho;
use ergo_benches::out;
use tokio::io::AsyncWriteExt;

const COOKIE: &str = "resilience_bench";

fn note(s: &str) {
    println!("# {s}");
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn node(name: &str, epmd_port: u16, busy_limit: usize) -> Node {
    let node = Node::builder(format!("{name}@127.0.0.1"))
        .cookie(COOKIE)
        .start()
        .expect("node");
    node.dist()
        .listen(DistOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            epmd_port: Some(epmd_port),
            dist_buf_busy_limit: busy_limit,
            ..DistOptions::default()
        })
        .await
        .expect("listen");
    node
}

/// An `erl` node with a registered `sink` that takes every message.
struct Erl(std::process::Child);

impl Erl {
    fn start(name: &str, epmd_port: u16) -> Erl {
        let child = Command::new("erl")
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .args([
                "-name",
                &format!("{name}@127.0.0.1"),
                "-setcookie",
                COOKIE,
                "-noshell",
                "-eval",
                "register(sink, spawn(fun L() -> receive _ -> L() end end)).",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("erl on PATH");
        Erl(child)
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -{sig} {}", self.0.id())])
            .status();
    }
}

impl Drop for Erl {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Floods a frozen erl node for `secs`; gives (RSS growth KiB, MiB sent).
async fn flood(label: &str, epmd_port: u16, busy_limit: usize, secs: f64) -> (u64, f64) {
    let a = node(&format!("flood_{label}"), epmd_port, busy_limit).await;
    let erl = Erl::start(&format!("frozen_{label}"), epmd_port);
    let target = Atom::from(format!("frozen_{label}@127.0.0.1").as_str());
    let up = Instant::now();
    while !a.dist().connect(target).await {
        assert!(up.elapsed() < Duration::from_secs(20), "erl starts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the sink's registration happen before the freeze.
    tokio::time::sleep(Duration::from_millis(500)).await;
    erl.signal("STOP");
    let before = rss_kib();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (sent, stop) = (sent.clone(), stop.clone());
        a.spawn(move |ctx| async move {
            let chunk = Term::Binary(vec![5u8; 64 << 10].into());
            while !stop.load(Relaxed) {
                let _ = ctx.send((Atom::from("sink"), target), chunk.clone());
                sent.fetch_add(1, Relaxed);
                tokio::task::yield_now().await;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let grown = rss_kib().saturating_sub(before);
    let mib = sent.load(Relaxed) as f64 * 64.0 / 1024.0;
    stop.store(true, Relaxed);
    drop(erl);
    a.stop(Duration::from_millis(200)).await;
    (grown, mib)
}

/// Sequential calls from `b` to `a`'s echo for `secs`: each call's time.
async fn call_times(b: &Node, a: Atom, secs: f64) -> Vec<f64> {
    let dest = (Atom::from("echo"), a);
    let mut times = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let t = Instant::now();
        black_box(
            b.call(dest, Term::Int(42), Duration::from_secs(10))
                .await
                .expect("call"),
        );
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn burst(epmd_port: u16, secs: f64) {
    let a = node("served", epmd_port, 1 << 20).await;
    let b = node("caller", epmd_port, 1 << 20).await;
    a.start_server_named::<TermEcho>("echo", ())
        .await
        .expect("echo");
    assert!(b.dist().connect(a.name()).await);
    let _ = call_times(&b, a.name(), 0.3).await;
    let idle = call_times(&b, a.name(), secs).await;
    out("call_idle_p50_us", pct(&idle, 0.5), "us");
    out("call_idle_p99_us", pct(&idle, 0.99), "us");
    let port = a.dist().dist_port().expect("port");
    // The floor: the same burst aimed at a listener in the attacker's own
    // process, which reads and drops each connection. What the calls lose
    // then is the attacker's and the kernel's share of the two cores, not
    // the node's handshake work.
    let floor = burst_calls(&b, &a, 0).await;
    out("call_floor_p50_us", pct(&floor, 0.5), "us");
    out("call_floor_p99_us", pct(&floor, 0.99), "us");
    let during = burst_calls(&b, &a, port).await;
    out("call_burst_p50_us", pct(&during, 0.5), "us");
    out("call_burst_p99_us", pct(&during, 0.99), "us");
    out("call_burst_max_us", *during.last().expect("calls"), "us");
    a.stop(Duration::from_millis(200)).await;
    b.stop(Duration::from_millis(200)).await;
}

/// `b`'s calls to `a`'s echo while the attacker makes its 2,000 bad
/// handshakes to `port` (0: to a sink of its own), sorted.
async fn burst_calls(b: &Node, a: &Node, port: u16) -> Vec<f64> {
    let exe = std::env::current_exe().expect("this binary");
    let mut attacker = tokio::process::Command::new(exe)
        .args(["--attack", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the attacker starts");
    let t0 = Instant::now();
    let mut during = Vec::new();
    let dest = (Atom::from("echo"), a.name());
    // Calls for as long as the attacker runs.
    let done = loop {
        let t = Instant::now();
        black_box(
            b.call(dest, Term::Int(42), Duration::from_secs(10))
                .await
                .expect("call during the burst"),
        );
        during.push(t.elapsed().as_secs_f64() * 1e6);
        if let Ok(Some(status)) = attacker.try_wait() {
            break status;
        }
    };
    let took = t0.elapsed();
    let report = {
        use tokio::io::AsyncReadExt;
        let mut s = String::new();
        if let Some(mut o) = attacker.stdout.take() {
            let _ = o.read_to_string(&mut s).await;
        }
        s
    };
    note(&format!(
        "attacker ({}): {} in {took:?} ({done}); {} calls during it",
        if port == 0 {
            "at its own sink"
        } else {
            "at the node"
        },
        report.trim(),
        during.len()
    ));
    during.sort_by(f64::total_cmp);
    during
}

/// 1,000 wrong-cookie handshakes and 1,000 garbage ones, 16 at a time.
async fn attack(port: u16) {
    // Port 0: a listener of this process's own, which drops each
    // connection after its first read.
    let port = if port == 0 {
        let sink = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("sink");
        let p = sink.local_addr().expect("sink address").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = sink.accept().await {
                tokio::spawn(async move {
                    // What comes first is read, then the connection is
                    // dropped, as a refusing node does.
                    let mut buf = [0u8; 512];
                    let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                });
            }
        });
        p
    } else {
        port
    };
    let bad = Local {
        name: "attacker@127.0.0.1".into(),
        cookie: "wrong".into(),
        flags: handshake::flags::MANDATORY_25 | handshake::flags::MANDATORY_26,
        creation: 1,
    };
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let (bad, refused) = (bad.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..125u64 {
                let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                if (w + i) % 2 == 0 {
                    if handshake::initiate(&mut s, &bad, 6).await.is_err() {
                        refused.fetch_add(1, Relaxed);
                    }
                } else {
                    let mut x = w * 1000 + i + 1;
                    let junk: Vec<u8> = (0..200)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        })
                        .collect();
                    let _ = s.write_all(&junk).await;
                    let _ = s.shutdown().await;
                    refused.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!("{} of 2000 bad handshakes refused", refused.load(Relaxed));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match args.next().as_deref() {
        Some("--attack") => {
            let port = args
                .next()
                .and_then(|p| p.parse().ok())
                .expect("--attack PORT");
            rt.block_on(attack(port));
        }
        Some("--burst") => {
            // The call figures alone (for profiling).
            let secs: f64 = args.next().map_or(2.0, |s| s.parse().expect("SECONDS"));
            let epmd_port = free_port();
            rt.block_on(async move {
                let epmd = ergo::dist::epmd::EpmdServer::start(
                    ([127, 0, 0, 1], epmd_port).into(),
                    ergo::dist::epmd::ServerOptions::default(),
                )
                .await
                .expect("EPMD");
                burst(epmd_port, secs).await;
                epmd.shutdown();
            });
        }
        secs => {
            let secs: f64 = secs.map_or(2.0, |s| s.parse().expect("SECONDS"));
            let epmd_port = free_port();
            rt.block_on(async move {
                // One EPMD for the whole run (each node would otherwise
                // host one that ends with it).
                let epmd = ergo::dist::epmd::EpmdServer::start(
                    ([127, 0, 0, 1], epmd_port).into(),
                    ergo::dist::epmd::ServerOptions::default(),
                )
                .await
                .expect("EPMD");
                let run = tokio::spawn(async move {
                    // Bounded first: the unbounded run leaves the heap big.
                    let (g, m) = flood("bounded", epmd_port, 1 << 20, secs).await;
                    out("flood_rss_growth_kib_bounded", g as f64, "KiB");
                    out("flood_sent_mib_bounded", m, "MiB");
                    let (g, m) = flood("unbounded", epmd_port, usize::MAX, secs).await;
                    out("flood_rss_growth_kib_unbounded", g as f64, "KiB");
                    out("flood_sent_mib_unbounded", m, "MiB");
                    burst(epmd_port, secs).await;
                })
                .await;
                epmd.shutdown();
                run
            })
            .expect("the benchmark runs");
        }
    }
}
