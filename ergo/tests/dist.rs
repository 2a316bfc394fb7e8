//! Distribution between ergo nodes and real Erlang nodes on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{Erl, free_port};
use ergo::dist::DistOptions;
use ergo::{Atom, Message, Node, Term};

async fn node(name: &str, cookie: &str, epmd: u16) -> Node {
    node_with(name, cookie, epmd, |_| {}).await
}

async fn node_with(
    name: &str,
    cookie: &str,
    epmd: u16,
    tweak: impl FnOnce(&mut DistOptions),
) -> Node {
    let node = Node::builder(format!("{name}@127.0.0.1"))
        .cookie(cookie)
        .start()
        .unwrap();
    let mut opts = DistOptions {
        epmd_port: Some(epmd),
        ..DistOptions::default()
    };
    tweak(&mut opts);
    node.listen(opts).await.unwrap();
    node
}

/// A process registered as `name` that answers `{From, T}` with `{echo, T}`.
fn echo(node: &Node, name: &str) {
    let pid = node.spawn(|mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            if let Some(Term::Tuple(t)) = m.to_term()
                && t.len() == 2
                && let Term::Pid(from) = t[0]
            {
                let _ = ctx.send(from, Term::tuple([Term::atom("echo"), t[1].clone()]));
            }
        }
        #[allow(unreachable_code)]
        ()
    });
    node.register(Atom::from(name), pid).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_process_exchange_messages_over_tcp() {
    let epmd = free_port();
    let a = node("a", "c", epmd).await;
    let b = node("b", "c", epmd).await;
    echo(&b, "echo");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let b_name = b.name();
    a.spawn(move |mut ctx| async move {
        ctx.send(
            (Atom::from("echo"), b_name),
            Term::tuple([Term::Pid(ctx.pid()), Term::atom("hi")]),
        )
        .unwrap();
        let m = ctx.receive_timeout(Duration::from_secs(5)).await;
        let _ = tx.send(m.and_then(|m| m.to_term()));
    });
    let got = rx.await.unwrap();
    assert_eq!(got.unwrap().to_string(), "{echo,hi}");
    assert_eq!(a.nodes(), vec![b.name()]);
    assert_eq!(b.nodes(), vec![a.name()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erlang_pings_ergo_and_both_list_each_other_in_nodes() {
    let epmd = free_port();
    let a = node("ping_a", "cookie", epmd).await;
    let mut erl = Erl::start("ping_e", "cookie", epmd, &[]);
    assert_eq!(erl.eval("net_adm:ping('ping_a@127.0.0.1')"), "pong");
    assert_eq!(erl.eval("nodes()"), "['ping_a@127.0.0.1']");
    assert_eq!(a.nodes(), vec![Atom::from("ping_e@127.0.0.1")]);
    let _ = Message::Term(Term::NIL);
}
