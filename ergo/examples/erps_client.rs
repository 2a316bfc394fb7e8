//! An Erps client, for Elixir's `Erps.Server` (or `erps_server`).
//!
//! ```text
//! cargo run --release --example erps_client -- --port N [--host H] [--tls-cacertfile CA.pem]
//! ```
//!
//! With `--tls-cacertfile` it connects over TLS, trusting that CA; Erps'
//! TLS servers want a client certificate too by default: give it with
//! `--tls-certfile F --tls-keyfile F`.
//!
//! Connects, calls `ping` and prints the reply on a line of its own (in
//! Erlang's `~w` form), casts `{push_back, hello}`, prints the term the
//! server pushes when it arrives, and exits 0. It exits non-zero, saying
//! why, if the server cannot be reached or nothing arrives within 5 s.

use std::time::Duration;

use ergo::erps::client::{ClientOptions, ErpsClient};
use ergo::{Node, Term};

fn usage() -> ! {
    eprintln!(
        "usage: erps_client --port N [--host H] [--tls-cacertfile CA.pem [--tls-certfile CERT.pem --tls-keyfile KEY.pem]]"
    );
    std::process::exit(2);
}

fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("erps_client: {why}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let mut port = None;
    let mut host = "127.0.0.1".to_string();
    // Whatever the server answers is printed, atoms new to this node
    // included (safe decoding would refuse those).
    let mut options = ClientOptions {
        safe: false,
        ..ClientOptions::default()
    };
    let (mut cert, mut key) = (None::<String>, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--port" => port = Some(value().parse::<u16>().unwrap_or_else(|_| usage())),
            "--host" => host = value(),
            "--tls-cacertfile" => options.tls_ca = Some(value().into()),
            "--tls-certfile" => cert = Some(value()),
            "--tls-keyfile" => key = Some(value()),
            _ => usage(),
        }
    }
    let Some(port) = port else { usage() };
    match (cert, key) {
        (Some(c), Some(k)) => options.client_cert = Some((c.into(), k.into())),
        (None, None) => {}
        _ => usage(),
    }
    let wait = Duration::from_secs(5);
    options.connect_timeout = wait;
    let node = Node::builder("erps_client@localhost")
        .start()
        .expect("node starts");
    let (client, mut pushes) = ErpsClient::connect(&node, &host, port, options)
        .await
        .unwrap_or_else(|reason| fail(format!("cannot reach {host}:{port}: {reason}")));
    match client.call(Term::atom("ping"), wait).await {
        Ok(reply) => println!("{}", ergo::io_lib::write(&reply)),
        Err(e) => fail(e),
    }
    client.cast(Term::tuple([Term::atom("push_back"), Term::atom("hello")]));
    match tokio::time::timeout(wait, pushes.recv()).await {
        Ok(Some(pushed)) => println!("{}", ergo::io_lib::write(&pushed)),
        Ok(None) => fail("the connection closed before anything was pushed"),
        Err(_) => fail("nothing was pushed within 5 s"),
    }
    client.close().await;
}
