//! An Erps server, for Elixir's `Erps.Client` (or `erps_client`).
//!
//! ```text
//! cargo run --release --example erps_server -- --port 0
//! cargo run --release --example erps_server -- --port 0 --tls-certfile cert.pem --tls-keyfile key.pem
//! ```
//!
//! Prints `port N` once it accepts. A call with any term `T` is answered
//! `{echo, T}`; a cast `{push_back, T}` makes the server push `T` to the
//! client that cast it. Every client is a connection process of its own,
//! under the daemon's supervisor.

use std::net::SocketAddr;

use ergo::erps::server::{ErpsContext, ErpsOptions, ErpsServer};
use ergo::gen_server::{Flow, Reply};
use ergo::net::{DaemonRef, TlsFiles};
use ergo::{Node, Reason, Strategy, SupervisorSpec, Term};

struct Echo;

impl ErpsServer for Echo {
    type Args = ();
    type Call = Term;
    type Reply = Term;
    type Cast = Term;

    async fn init(_: (), peer: SocketAddr, _ctx: &mut ErpsContext<Self>) -> Result<Self, Reason> {
        tracing::info!(%peer, "Erps client connected");
        Ok(Echo)
    }

    async fn handle_call(&mut self, request: Term, _ctx: &mut ErpsContext<Self>) -> Reply<Term> {
        Reply::Reply(Term::tuple([Term::atom("echo"), request]))
    }

    async fn handle_cast(&mut self, request: Term, ctx: &mut ErpsContext<Self>) -> Flow {
        if let Some([tag, t]) = request.as_tuple()
            && tag.is_atom("push_back")
            && ctx.push(t.clone()).await.is_err()
        {
            return Flow::Stop(Reason::Normal);
        }
        Flow::Continue
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: erps_server --port N [--ifaddr IP] [--tls-certfile CERT.pem --tls-keyfile KEY.pem]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    ergo::logger::init();
    let mut port = None;
    let mut ifaddr: std::net::IpAddr = "127.0.0.1".parse().expect("an address");
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
    // An echo of any term: atoms the node has not seen yet are taken too
    // (decoding in safe mode refuses them). The atom table is bounded, so a
    // client sending endless new atoms gets errors, not a node out of
    // memory.
    let options = ErpsOptions {
        safe: false,
        ..ErpsOptions::default()
    };
    let mut spec = ergo::erps::server::daemon::<Echo>((), options)
        .port(port)
        .ifaddr(ifaddr);
    match (cert, key) {
        (Some(c), Some(k)) => spec = spec.tls(TlsFiles::new(c, k)),
        (None, None) => {}
        _ => usage(),
    }
    let node = Node::builder("erps_server@localhost")
        .start()
        .expect("node starts");
    let top = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne).child(ergo::net::child_spec("erps", spec)),
        )
        .await
        .unwrap_or_else(|reason| {
            eprintln!("the Erps server did not start: {reason}");
            std::process::exit(1);
        });
    let pid = top.which_children().await.expect("the supervisor answers")[0]
        .pid
        .expect("the daemon runs");
    let daemon = DaemonRef::<ergo::erps::server::ErpsConnection<Echo>>::new(&node, pid);
    println!("port {}", daemon.port().await.expect("the daemon answers"));
    let _ = tokio::signal::ctrl_c().await;
}
