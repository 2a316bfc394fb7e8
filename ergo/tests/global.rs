//! `global` between ergo nodes and real Erlang nodes (OTP 25) on 127.0.0.1:
//! names registered on either side are seen and reached from the other,
//! a name goes with its process and with its node, and a name held twice
//! when two clusters meet is settled as `global:random_exit_name/3` settles
//! it (the process on the node with the lower name keeps it, the other is
//! killed).

mod common;

use std::time::Duration;

use common::{Erl, free_port};
use ergo::{Node, Pid, Term};

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 30 s"))
}

async fn node(name: &str, epmd: u16) -> Node {
    common::dist_node(name, "gc", epmd).await
}

/// Waits (up to 15 s) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Evaluates `expr` on `erl` until it gives `want` (up to 10 s).
fn poll(e: &mut Erl, expr: &str, want: &str) {
    let got = e.eval(&format!(
        "(fun P(0) -> {expr}; P(K) -> case {expr} of {want} -> {want}; _ -> timer:sleep(20), P(K - 1) end end)(500)"
    ));
    assert_eq!(got, want, "{expr}");
}

/// A process that sends what it receives to `tx`, as text.
fn sink(node: &Node) -> (Pid, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pid = node.spawn(move |mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            if tx.send(m.to_string()).is_err() {
                break;
            }
        }
    });
    (pid, rx)
}

fn ok(e: &mut Erl, exprs: &str) {
    assert_eq!(e.eval(exprs), "ok", "set-up failed: {exprs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_registered_on_erlang_and_on_rust_are_seen_and_reached_from_both_sides() {
    let epmd = free_port();
    let a = node("gl_a", epmd).await;
    let mut e = Erl::start("gl_e", "gc", epmd, &[]);
    ok(
        &mut e,
        "pong = net_adm:ping('gl_a@127.0.0.1'), ok = global:sync(), ok",
    );
    // Erlang registers: the Rust node sees the name and reaches it.
    ok(
        &mut e,
        "Me = self(), P = spawn(fun F() -> receive M -> Me ! {got, M}, F() end end), \
         yes = global:register_name(erl_name, P), ok",
    );
    let g = a.global();
    until("the Erlang name on the Rust node", || {
        g.whereis_name(&Term::atom("erl_name")).is_some()
    })
    .await;
    let p = g.whereis_name(&Term::atom("erl_name")).unwrap();
    assert_eq!(p.node.as_str(), "gl_e@127.0.0.1");
    assert_eq!(g.send(&Term::atom("erl_name"), Term::atom("hello")), Ok(p));
    assert_eq!(
        e.eval("receive {got, M} -> M after 5000 -> timeout end"),
        "hello"
    );
    // The name is taken: the Rust node cannot have it.
    let (w, mut at_w) = sink(&a);
    assert!(!g.register_name(Term::atom("erl_name"), w).await.unwrap());
    // Rust registers: Erlang sees the name and reaches it.
    assert!(g.register_name(Term::atom("rust_name"), w).await.unwrap());
    assert_eq!(
        e.eval("global:whereis_name(rust_name) =/= undefined"),
        "true"
    );
    assert_eq!(
        e.eval("node(global:whereis_name(rust_name))"),
        "'gl_a@127.0.0.1'"
    );
    ok(&mut e, "_ = global:send(rust_name, {hi, from_erlang}), ok");
    assert_eq!(
        within("global:send", at_w.recv()).await.unwrap(),
        "{hi,from_erlang}"
    );
    assert_eq!(e.eval("global:register_name(rust_name, self())"), "no");
    assert_eq!(
        e.eval("lists:sort(global:registered_names())"),
        "[erl_name,rust_name]"
    );
    // One name per process.
    assert!(!g.register_name(Term::atom("other_name"), w).await.unwrap());
    // Unregistered on one side, gone on both.
    g.unregister_name(Term::atom("rust_name")).await.unwrap();
    assert_eq!(e.eval("global:whereis_name(rust_name)"), "undefined");
    ok(&mut e, "global:unregister_name(erl_name), ok");
    until("erl_name unregistered", || {
        g.whereis_name(&Term::atom("erl_name")).is_none()
    })
    .await;
    // A name goes with its process, either side.
    assert!(g.register_name(Term::atom("rust_name"), w).await.unwrap());
    a.exit(w, w, ergo::Reason::Kill);
    poll(&mut e, "global:whereis_name(rust_name)", "undefined");
    ok(
        &mut e,
        "P2 = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(short, P2), ok",
    );
    until("short registered", || {
        g.whereis_name(&Term::atom("short")).is_some()
    })
    .await;
    ok(&mut e, "P2 ! stop, ok");
    until("short gone with its process", || {
        g.whereis_name(&Term::atom("short")).is_none()
    })
    .await;
    // And with its node.
    ok(
        &mut e,
        "P3 = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(far, P3), ok",
    );
    until("far registered", || {
        g.whereis_name(&Term::atom("far")).is_some()
    })
    .await;
    e.kill();
    until("far gone with its node", || {
        g.whereis_name(&Term::atom("far")).is_none()
    })
    .await;
    assert!(g.registered_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rust_nodes_and_an_erlang_node_share_one_set_of_names() {
    let epmd = free_port();
    let a = node("gl3_a", epmd).await;
    let b = node("gl3_b", epmd).await;
    let mut e = Erl::start("gl3_e", "gc", epmd, &[]);
    assert!(a.dist().connect("gl3_b@127.0.0.1").await);
    ok(
        &mut e,
        "pong = net_adm:ping('gl3_a@127.0.0.1'), pong = net_adm:ping('gl3_b@127.0.0.1'), ok = global:sync(), ok",
    );
    within("sync on a", a.global().sync()).await.unwrap();
    within("sync on b", b.global().sync()).await.unwrap();
    let (wa, _at_wa) = sink(&a);
    let (wb, mut at_wb) = sink(&b);
    assert!(
        a.global()
            .register_name(Term::atom("on_a"), wa)
            .await
            .unwrap()
    );
    assert!(
        b.global()
            .register_name(Term::atom("on_b"), wb)
            .await
            .unwrap()
    );
    ok(
        &mut e,
        "P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(on_e, P), ok",
    );
    for n in [&a, &b] {
        until("every name on every Rust node", || {
            let mut names = n.global().registered_names();
            names.sort();
            names == vec![Term::atom("on_a"), Term::atom("on_b"), Term::atom("on_e")]
        })
        .await;
    }
    assert_eq!(b.global().whereis_name(&Term::atom("on_a")), Some(wa));
    assert_eq!(a.global().whereis_name(&Term::atom("on_b")), Some(wb));
    assert_eq!(
        e.eval("lists:sort(global:registered_names())"),
        "[on_a,on_b,on_e]"
    );
    // Sent from a to the name b's process holds.
    a.global()
        .send(&Term::atom("on_b"), Term::atom("across"))
        .unwrap();
    assert_eq!(within("across", at_wb.recv()).await.unwrap(), "across");
    // A name taken on one Rust node is refused on the other.
    let (wb2, _) = sink(&b);
    assert!(
        !b.global()
            .register_name(Term::atom("on_a"), wb2)
            .await
            .unwrap()
    );
}

/// Two clusters, each with a process named `clash`, meet: both sides end
/// with the process on the node with the lower name, and the other process
/// is killed.
async fn clash(rust_name: &str, erl_name: &str) {
    let epmd = free_port();
    let a = node(rust_name, epmd).await;
    let mut e = Erl::start(erl_name, "gc", epmd, &[]);
    let (w, _at_w) = sink(&a);
    assert!(
        a.global()
            .register_name(Term::atom("clash"), w)
            .await
            .unwrap()
    );
    ok(
        &mut e,
        "P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(clash, P), \
         MonP = monitor(process, P), ok",
    );
    ok(
        &mut e,
        &format!("pong = net_adm:ping('{rust_name}@127.0.0.1'), ok = global:sync(), ok"),
    );
    let rust_lower = rust_name < erl_name;
    if rust_lower {
        // The Rust process keeps the name; Erlang's is killed.
        assert_eq!(
            e.eval("receive {'DOWN', MonP, process, P, R} -> R after 10000 -> alive end"),
            "killed"
        );
        poll(&mut e, "global:whereis_name(clash) =:= P", "false");
        poll(
            &mut e,
            "node(global:whereis_name(clash))",
            &format!("'{rust_name}@127.0.0.1'"),
        );
        until("the Rust holder on the Rust node", || {
            a.global().whereis_name(&Term::atom("clash")) == Some(w)
        })
        .await;
        assert!(a.is_alive(w));
    } else {
        // Erlang's process keeps it; the Rust one is killed.
        until("the Rust holder killed", || !a.is_alive(w)).await;
        assert_eq!(e.eval("is_process_alive(P)"), "true");
        assert_eq!(e.eval("global:whereis_name(clash) =:= P"), "true");
        until("the Erlang holder on the Rust node", || {
            a.global()
                .whereis_name(&Term::atom("clash"))
                .is_some_and(|p| p.node.as_str() == format!("{erl_name}@127.0.0.1"))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_on_both_sides_when_clusters_meet_stays_with_the_lower_node_rust_lower() {
    clash("aa_clash", "zz_clash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_on_both_sides_when_clusters_meet_stays_with_the_lower_node_erlang_lower() {
    clash("zz_clash2", "aa_clash2").await;
}
