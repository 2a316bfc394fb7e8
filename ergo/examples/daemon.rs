//! A supervised line-echo daemon.
//!
//! ```text
//! cargo run --release --example daemon -- --port 0
//! cargo run --release --example daemon -- --port 0 --tls-certfile cert.pem --tls-keyfile key.pem
//! ```
//!
//! Listens on the port given (0: a free one) on 127.0.0.1 (`--ifaddr IP`
//! for another address), prints `port N` once it accepts connections, and
//! sends every line a client writes back on that client's connection. Each
//! connection is a process of its own under the daemon's supervisor; the
//! daemon is a child of the program's top supervisor, which starts it again
//! if it crashes. With `--tls-certfile` and `--tls-keyfile` it serves the
//! same over TLS.

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use ergo::gen_server::Flow;
use ergo::net::{ConnContext, DaemonRef, DaemonSpec, Handler, TlsFiles};
use ergo::{Node, Reason, Strategy, SupervisorSpec};

/// Echoes each complete line back.
struct LineEcho {
    pending: BytesMut,
}

impl Handler for LineEcho {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(_: (), peer: SocketAddr, _ctx: &mut ConnContext<Self>) -> Result<Self, Reason> {
        tracing::info!(%peer, "client connected");
        Ok(LineEcho {
            pending: BytesMut::new(),
        })
    }

    async fn handle_data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>) -> Flow {
        self.pending.extend_from_slice(&data);
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            let lines = self.pending.split_to(end + 1);
            if let Err(e) = ctx.write(&lines).await {
                return Flow::Stop(Reason::other(ergo::Term::binary(e.to_string())));
            }
        }
        Flow::Continue
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: daemon --port N [--ifaddr IP] [--tls-certfile CERT.pem --tls-keyfile KEY.pem]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    ergo::logger::init();
    let mut port = None;
    let mut ifaddr: IpAddr = "127.0.0.1".parse().expect("an address");
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--port" => port = Some(value().parse::<u16>().unwrap_or_else(|_| usage())),
            "--ifaddr" => ifaddr = value().parse().unwrap_or_else(|_| usage()),
            "--tls-certfile" => cert = Some(value()),
            "--tls-keyfile" => key = Some(value()),
            _ => usage(),
        }
    }
    let Some(port) = port else { usage() };
    let mut spec = DaemonSpec::<LineEcho>::new(()).port(port).ifaddr(ifaddr);
    match (cert, key) {
        (Some(c), Some(k)) => spec = spec.tls(TlsFiles::new(c, k)),
        (None, None) => {}
        _ => usage(),
    }
    let node = Node::builder("daemon@localhost")
        .start()
        .expect("node starts");
    let top = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne).child(ergo::net::child_spec("echo", spec)),
        )
        .await
        .unwrap_or_else(|reason| {
            eprintln!("the daemon did not start: {reason}");
            std::process::exit(1);
        });
    let children = top.which_children().await.expect("the supervisor answers");
    let pid = children
        .iter()
        .find_map(|c| c.pid)
        .expect("the daemon runs");
    let daemon = DaemonRef::<LineEcho>::new(&node, pid);
    println!("port {}", daemon.port().await.expect("the daemon answers"));
    // Serve until interrupted.
    let _ = tokio::signal::ctrl_c().await;
}
