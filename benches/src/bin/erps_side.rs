//! The Rust side of `erps_vs_elixir.sh`: sequential Erps calls to a server
//! (the `erps_server` example, or Elixir's), one at a time, for SECS
//! seconds; prints the mean round trip.
//!
//! ```text
//! erps_side PORT SECS LABEL [CA CERT KEY]
//! ```

use std::time::{Duration, Instant};

use ergo::Node;
use ergo::erps::client::{ClientOptions, ErpsClient};
use ergo_benches::out;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 && args.len() != 6 {
        eprintln!("usage: erps_side PORT SECS LABEL [CA CERT KEY]");
        std::process::exit(2);
    }
    let port: u16 = args[0].parse().expect("a port");
    let secs: f64 = args[1].parse().expect("seconds");
    let mut options = ClientOptions {
        safe: false,
        ..ClientOptions::default()
    };
    if args.len() == 6 {
        options.tls_ca = Some(args[3].clone().into());
        options.client_cert = Some((args[4].clone().into(), args[5].clone().into()));
    }
    let node = Node::builder("erps_bench@localhost").start().unwrap();
    let (client, _pushes) = ErpsClient::connect(&node, "127.0.0.1", port, options)
        .await
        .expect("connects");
    let ping = ergo::Term::atom("ping");
    for _ in 0..100 {
        client
            .call(ping.clone(), Duration::from_secs(5))
            .await
            .expect("a reply");
    }
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        client
            .call(ping.clone(), Duration::from_secs(5))
            .await
            .expect("a reply");
        n += 1;
    }
    out(
        &args[2],
        t0.elapsed().as_secs_f64() * 1e6 / n as f64,
        "us/call",
    );
}
