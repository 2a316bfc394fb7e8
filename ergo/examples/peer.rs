//! Peer nodes from Rust: this program starts one `erl` peer and one ergo
//! peer (itself, run again as a peer), calls into each through its control
//! connection, shows their console output, and stops each with a different
//! shutdown.
//!
//! ```text
//! cargo run --example peer
//! ```
//!
//! The `erl` peer talks over its standard I/O, the ergo peer over TCP; the
//! `erl` peer is stopped in order (`init:stop()`), the ergo peer halted.
//! Each prints the states it went through. The node hosts its own EPMD
//! when none runs; `erl` must be installed for the first peer.

use std::time::{Duration, Instant};

use ergo::dist::DistOptions;
use ergo::dist::rpc::RpcFailure;
use ergo::peer::{Connection, Peer, PeerOptions, PeerState, Shutdown, WaitBoot};
use ergo::{Node, Term};

#[tokio::main]
async fn main() {
    // Run again by the origin below, this program is the ergo peer: it
    // serves `demo:greet/1` to its origin and never returns from here.
    ergo::peer::serve_if_peer(|node| async move {
        node.dist()
            .register_rpc("demo", "greet", |args: Vec<Term>| async move {
                match args.as_slice() {
                    [who] => Ok(Term::binary(format!("hello, {who}, from Rust"))),
                    _ => Err(RpcFailure::Error(Term::atom("badarg"))),
                }
            });
        ergo::peer::print(&node, "the ergo peer is up\n");
    })
    .await;

    let node = Node::builder("origin@127.0.0.1")
        .cookie("peer-demo")
        .start()
        .expect("the node starts");
    node.dist()
        .listen(DistOptions::default())
        .await
        .expect("distribution starts");
    let t = Duration::from_secs(5);

    // An erl peer over standard I/O, stopped in order.
    let erl = start(
        &node,
        "erl",
        PeerOptions::new()
            .name("erl_peer")
            .connection(Connection::StandardIo)
            .shutdown(Shutdown::Stop(Some(Duration::from_secs(5))))
            .output(|text| print!("[erl_peer] {text}")),
    )
    .await;
    if let Some(erl) = &erl {
        show(
            "erl_peer",
            "erlang:node()",
            erl.call("erlang", "node", vec![], t).await,
        );
        show(
            "erl_peer",
            "lists:sum([1,2,3])",
            erl.call(
                "lists",
                "sum",
                vec![Term::List(vec![1.into(), 2.into(), 3.into()])],
                t,
            )
            .await,
        );
        erl.cast(
            "io",
            "format",
            vec![
                Term::charlist("the erl peer's console: ~p~n"),
                Term::List(vec![Term::atom("hello")]),
            ],
        );
    }

    // This program as an ergo peer over TCP, halted.
    let me = std::env::current_exe().expect("this program's path");
    let ergo_peer = start(
        &node,
        "ergo",
        PeerOptions::new()
            .name("ergo_peer")
            .exec(me.to_str().expect("a UTF-8 path"), &[])
            .connection(Connection::Tcp {
                ip: Some([127, 0, 0, 1].into()),
                port: 0,
            })
            .shutdown(Shutdown::Halt(Some(Duration::from_secs(5))))
            .output(|text| print!("[ergo_peer] {text}")),
    )
    .await;
    if let Some(p) = &ergo_peer {
        show(
            "ergo_peer",
            "erlang:node()",
            p.call("erlang", "node", vec![], t).await,
        );
        show(
            "ergo_peer",
            "demo:greet(erlang)",
            p.call("demo", "greet", vec![Term::atom("erlang")], t).await,
        );
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    for (name, how, peer) in [
        ("erl_peer", "init:stop()", erl),
        ("ergo_peer", "halt", ergo_peer),
    ] {
        if let Some(peer) = peer {
            let at = Instant::now();
            peer.stop().await.expect("the controller stops");
            let gone = !node.dist().nodes().contains(&peer.node().expect("named"));
            println!(
                "{name} peer: stopped by {how} in {:?} (its node {})",
                at.elapsed(),
                if gone { "is gone" } else { "is going" }
            );
        }
    }
}

/// Starts a peer without waiting, and reports the states it goes through
/// until it runs.
async fn start(node: &Node, what: &str, options: PeerOptions) -> Option<Peer> {
    let at = Instant::now();
    let peer = match ergo::peer::start(node, options.wait_boot(WaitBoot::NoWait)).await {
        Ok(p) => p,
        Err(e) => {
            println!("cannot start the {what} peer: {e}");
            return None;
        }
    };
    let mut last = None;
    loop {
        let state = peer.state().await.expect("the controller answers");
        if last.as_ref() != Some(&state) {
            println!("{what} peer: {state} (after {:?})", at.elapsed());
        }
        match state {
            PeerState::Running => return Some(peer),
            PeerState::Down(_) => return None,
            PeerState::Booting => {}
        }
        last = Some(state);
        if at.elapsed() > Duration::from_secs(15) {
            println!("{what} peer: did not boot in 15 s");
            let _ = peer.stop().await;
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn show(peer: &str, what: &str, r: Result<Term, ergo::peer::CallFailure>) {
    match r {
        Ok(v) => println!("{peer}: {what} = {v}"),
        Err(e) => println!("{peer}: {what} failed: {e}"),
    }
}
