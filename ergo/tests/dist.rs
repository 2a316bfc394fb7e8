//! Distribution between ergo nodes and real Erlang nodes on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{Erl, dist_node as node, dist_node_with as node_with, free_port};
use ergo::{Atom, Node, Term};

/// `f`'s output, failing the test (naming `what`) if it takes longer than
/// 30 seconds.
async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 30 s"))
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
    let got = within("the echo", rx).await.unwrap();
    assert_eq!(got.unwrap().to_string(), "{echo,hi}");
    assert_eq!(a.dist().nodes(), vec![b.name()]);
    assert_eq!(b.dist().nodes(), vec![a.name()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erlang_pings_ergo_and_both_list_each_other_in_nodes() {
    let epmd = free_port();
    let a = node("ping_a", "cookie", epmd).await;
    let mut erl = Erl::start("ping_e", "cookie", epmd, &[]);
    assert_eq!(erl.eval("net_adm:ping('ping_a@127.0.0.1')"), "pong");
    assert_eq!(erl.eval("nodes()"), "['ping_a@127.0.0.1']");
    assert_eq!(a.dist().nodes(), vec![Atom::from("ping_e@127.0.0.1")]);
}

/// Runs `f` in a new process on `node` and gives back what it returns.
async fn in_process<T: Send + 'static, F, Fut>(node: &Node, f: F) -> T
where
    F: FnOnce(ergo::Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn(move |ctx| async move {
        let _ = tx.send(f(ctx).await);
    });
    within("the process", rx)
        .await
        .expect("the process ran to the end")
}

/// The pid registered as `name` on `node`, asked with `rpc:call`.
async fn whereis_on(node: &Node, on: Atom, name: &str) -> ergo::Pid {
    let r = node
        .dist()
        .rpc_call(
            on,
            "erlang",
            "whereis",
            vec![Term::atom(name)],
            Duration::from_secs(5),
        )
        .await;
    match r {
        Ok(Term::Pid(p)) => p,
        other => panic!("whereis({name}) on {on}: {other:?}"),
    }
}

/// The next message as text, or `"timeout"`.
async fn next(ctx: &mut ergo::Context, secs: u64) -> String {
    match ctx.receive_timeout(Duration::from_secs(secs)).await {
        Some(m) => m.to_string(),
        None => "timeout".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_monitors_and_exits_work_between_two_ergo_nodes() {
    let epmd = free_port();
    let a = node("lm_a", "c", epmd).await;
    let b = node("lm_b", "c", epmd).await;
    // A process on b that exits with the reason it is sent.
    let victim = b.spawn(|mut ctx| async move {
        let m = ctx.receive().await;
        ergo::Reason::from_term(m.to_term().unwrap())
    });
    let got = in_process(&a, move |mut ctx| async move {
        ctx.set_trap_exit(true);
        ctx.link(victim).unwrap();
        let r = ctx.monitor(victim);
        // Same sender, same receiver: the link and the monitor arrive
        // before the message.
        ctx.send(victim, Term::atom("bye")).unwrap();
        let first = next(&mut ctx, 5).await;
        let second = next(&mut ctx, 5).await;
        (r, first, second)
    })
    .await;
    let (r, got) = (got.0, [got.1, got.2]);
    let mut got = got;
    got.sort();
    assert_eq!(
        got[0],
        format!("{{'DOWN',{},process,{victim},bye}}", Term::Ref(r))
    );
    assert_eq!(got[1], format!("{{'EXIT',{victim},bye}}"));

    // Monitoring a name not registered on the other node: noproc.
    let b_name = b.name();
    let down = in_process(&a, move |mut ctx| async move {
        ctx.monitor((Atom::from("nobody"), b_name));
        next(&mut ctx, 5).await
    })
    .await;
    assert!(
        down.ends_with(&format!(",process,{{nobody,{b_name}}},noproc}}")),
        "{down}"
    );

    // exit/2 across nodes, and kill.
    let target = b.spawn(|mut ctx| async move {
        ctx.receive().await;
    });
    let b2 = b.clone();
    let watch = b2.wait_exit(target);
    a.spawn(move |ctx| async move { ctx.exit(target, ergo::Reason::Kill) });
    assert_eq!(within("the kill", watch).await, ergo::Reason::Killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_route_reaches_a_node_that_is_not_in_epmd() {
    let epmd = free_port();
    let hidden = node_with("static_b", "c", epmd, |o| o.epmd_port = None).await;
    echo(&hidden, "echo");
    let a = node("static_a", "c", epmd).await;
    let b_name = hidden.name();
    // Without a route: EPMD does not know it.
    assert!(!a.dist().connect(b_name).await);
    a.dist().add_route(
        b_name,
        std::net::SocketAddr::from(([127, 0, 0, 1], hidden.dist().dist_port().unwrap())),
    );
    let got = in_process(&a, move |mut ctx| async move {
        ctx.send(
            (Atom::from("echo"), b_name),
            Term::tuple([Term::Pid(ctx.pid()), Term::atom("via_route")]),
        )
        .unwrap();
        next(&mut ctx, 5).await
    })
    .await;
    assert_eq!(got, "{echo,via_route}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_with_sigkill_breaks_links_monitors_and_node_monitors() {
    let epmd = free_port();
    let a = node("k_a", "c", epmd).await;
    let mut erl = Erl::start("k_e", "c", epmd, &[]);
    assert_eq!(
        erl.eval(
            "P = spawn(fun() -> receive after infinity -> ok end end), register(sleeper, P), ok"
        ),
        "ok"
    );
    let erl_name = Atom::from(erl.name.as_str());
    assert!(a.dist().connect(erl_name).await);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.spawn(move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let p = whereis_on(ctx.node(), erl_name, "sleeper").await;
        ctx.link(p).unwrap();
        ctx.monitor(p);
        ctx.monitor_node(erl_name);
        let _ = ready_tx.send(());
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next(&mut ctx, 10).await);
        }
        let _ = tx.send((p, got));
    });
    within("the link and monitors", ready_rx).await.unwrap();
    // Once the link has reached the peer (it is the sleeper's only one),
    // kill it.
    assert_eq!(
        erl.eval("W = fun L(0) -> none; L(K) -> case process_info(P, links) of {links, [_]} -> linked; _ -> timer:sleep(20), L(K - 1) end end, W(250)"),
        "linked"
    );
    erl.kill();
    let (p, mut got) = within("the three notices", rx).await.unwrap();
    got.sort();
    assert!(
        got[0].starts_with("{'DOWN',") && got[0].ends_with(&format!(",process,{p},noconnection}}")),
        "{got:?}"
    );
    assert_eq!(got[1], format!("{{'EXIT',{p},noconnection}}"));
    assert_eq!(got[2], format!("{{nodedown,{erl_name}}}"));
    assert!(a.dist().nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_peer_is_declared_down_by_the_tick() {
    let epmd = free_port();
    let a = node_with("t_a", "c", epmd, |o| {
        o.net_ticktime = Duration::from_secs(2)
    })
    .await;
    let mut erl = Erl::start("t_e", "c", epmd, &["-kernel", "net_ticktime", "2"]);
    let erl_name = Atom::from(erl.name.as_str());
    assert_eq!(erl.eval("net_adm:ping('t_a@127.0.0.1')"), "pong");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    a.spawn(move |mut ctx| async move {
        ctx.monitor_node(erl_name);
        let _ = ready_tx.send(());
        let started = std::time::Instant::now();
        let got = next(&mut ctx, 20).await;
        let _ = tx.send((got, started.elapsed()));
    });
    within("the node monitor", ready_rx).await.unwrap();
    // Quiet for a few tick periods while connected: no nodedown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.dist().nodes(), vec![erl_name]);
    erl.signal("STOP");
    let (got, after) = within("the nodedown", rx).await.unwrap();
    erl.signal("CONT");
    assert_eq!(got, format!("{{nodedown,{erl_name}}}"));
    // Declared down within about one net_ticktime of the freeze (plus the
    // three quiet seconds before it).
    assert!(after < Duration::from_secs(3 + 5), "{after:?}");
    assert!(a.dist().nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ergo_talks_to_the_example_node_in_another_os_process() {
    let epmd = free_port();
    let r = common::InteropNode::start("two_r", "c", epmd);
    let a = node("two_a", "c", epmd).await;
    let r_name = Atom::from(r.name.as_str());
    let counter = (Atom::from("counter"), r_name);
    assert_eq!(
        a.call(
            counter,
            Term::tuple([Term::atom("add"), Term::Int(7)]),
            Duration::from_secs(5)
        )
        .await
        .unwrap(),
        Term::Int(7)
    );
    a.cast(counter, Term::atom("reset"));
    assert_eq!(
        a.call(counter, Term::atom("get"), Duration::from_secs(5))
            .await
            .unwrap(),
        Term::Int(0)
    );
    assert_eq!(
        a.dist()
            .rpc_call(
                r_name,
                "interop",
                "add",
                vec![Term::Int(1), Term::Int(2)],
                Duration::from_secs(5)
            )
            .await,
        Ok(Term::Int(3))
    );
    let undef = a
        .dist()
        .rpc_call(r_name, "interop", "nope", vec![], Duration::from_secs(5))
        .await;
    assert_eq!(
        undef.unwrap_err().to_string(),
        "badrpc: {'EXIT',{undef,[{interop,nope,[],[]}]}}"
    );
    assert_eq!(
        a.dist()
            .rpc_call(
                r_name,
                "interop",
                "sleep",
                vec![Term::Int(2000)],
                Duration::from_millis(100)
            )
            .await,
        Err(ergo::dist::rpc::RpcError::Timeout)
    );
    assert_eq!(a.dist().nodes(), vec![r_name]);
    // The node goes away: calls fail as nodedown, the node list empties.
    drop(r);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !a.dist().nodes().is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.dist().nodes().is_empty());
    assert_eq!(
        a.dist()
            .rpc_call(
                r_name,
                "interop",
                "add",
                vec![Term::Int(1), Term::Int(2)],
                Duration::from_secs(5)
            )
            .await,
        Err(ergo::dist::rpc::RpcError::NodeDown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_links_to_an_erlang_process_and_gets_its_exit() {
    let epmd = free_port();
    let a = node("le_a", "c", epmd).await;
    let mut erl = Erl::start("le_e", "c", epmd, &[]);
    assert_eq!(erl.eval("P = spawn(fun() -> receive {go, From} -> From ! linked_seen, exit(erl_reason) end end), register(victim, P), ok"), "ok");
    let erl_name = Atom::from(erl.name.as_str());
    let got = in_process(&a, move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let p = whereis_on(ctx.node(), erl_name, "victim").await;
        ctx.link(p).unwrap();
        ctx.send(p, Term::tuple([Term::atom("go"), Term::Pid(ctx.pid())]))
            .unwrap();
        let a = next(&mut ctx, 5).await;
        let b = next(&mut ctx, 5).await;
        (p, a, b)
    })
    .await;
    assert_eq!(got.1, "linked_seen");
    assert_eq!(got.2, format!("{{'EXIT',{},erl_reason}}", got.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_after_the_handshake_close_that_connection_only() {
    use ergo::dist::handshake::{self, Local};
    use tokio::io::AsyncWriteExt;
    let a = node_with("bad_a", "c", 0, |o| {
        o.epmd_port = None;
        o.max_message = 1 << 20;
    })
    .await;
    let port = a.dist().dist_port().unwrap();
    let me = Local {
        name: "intruder@127.0.0.1".into(),
        cookie: "c".into(),
        flags: handshake::flags::MANDATORY_25
            | handshake::flags::MANDATORY_26
            | handshake::flags::DIST_HDR_ATOM_CACHE
            | handshake::flags::PUBLISHED,
        creation: 7,
    };
    for garbage in [
        // An unknown frame type.
        vec![0, 0, 0, 2, 9, 9],
        // A header naming a cache slot that holds nothing.
        vec![0, 0, 0, 6, 131, 68, 1, 0, 5, 97],
        // A control message that is not a tuple.
        vec![0, 0, 0, 5, 131, 68, 0, 97, 1],
        // A frame over the size limit (only its length is sent).
        vec![0xFF, 0xFF, 0xFF, 0xFF],
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        within("the handshake", handshake::initiate(&mut s, &me, 6))
            .await
            .unwrap();
        s.write_all(&garbage).await.unwrap();
        // The node closes the connection: reads end (ticks aside).
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "connection left open after {garbage:?}"
        );
    }
    // The node is still up and serves the next, well-behaved node.
    let b = node_with("bad_b", "c", 0, |o| o.epmd_port = None).await;
    b.dist().add_route(a.name(), ([127, 0, 0, 1], port).into());
    assert!(b.dist().connect(a.name()).await);
    // (The accepting side may finish a moment after the connecting one.)
    until("a lists b", || a.dist().nodes() == vec![b.name()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_node_is_listed_as_hidden_on_both_sides() {
    let epmd = free_port();
    let h = node_with("hid_a", "c", epmd, |o| o.hidden = true).await;
    let mut erl = Erl::start("hid_e", "c", epmd, &[]);
    let erl_name = Atom::from(erl.name.as_str());
    assert!(h.dist().connect(erl_name).await);
    assert_eq!(erl.eval("nodes()"), "[]");
    assert_eq!(erl.eval("nodes(hidden)"), "['hid_a@127.0.0.1']");
    // The connection is hidden on this side too.
    assert!(h.dist().nodes().is_empty());
    assert_eq!(h.dist().hidden_nodes(), vec![erl_name]);
}

/// A process on `node` that traps exits, links to the pid it is sent as
/// `{link, Pid}` (then reports `linked`), and reports every other message
/// as text.
fn reporter(node: &Node) -> (ergo::Pid, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pid = node.spawn(move |mut ctx| async move {
        ctx.set_trap_exit(true);
        loop {
            let m = ctx.receive().await;
            if let Some(Term::Tuple(t)) = m.to_term()
                && let [tag, Term::Pid(p)] = t.as_slice()
                && tag.is_atom("link")
            {
                ctx.link(*p).unwrap();
                let _ = tx.send("linked".to_string());
                continue;
            }
            let _ = tx.send(m.to_string());
        }
        #[allow(unreachable_code)]
        ()
    });
    (pid, rx)
}

/// The next report, or a failed test after `secs` seconds.
async fn report(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, secs: u64) -> String {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no report within {secs} s"))
        .expect("the reporter is running")
}

/// Waits (at most 10 s) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_ergo_process_reaches_erlang_links_as_killed_exits_and_monitors_as_killed_downs()
{
    let epmd = free_port();
    let a = node("kl_a", "c", epmd).await;
    let victim = a.spawn(|mut ctx| async move {
        loop {
            ctx.receive().await;
        }
        #[allow(unreachable_code)]
        ()
    });
    a.dist()
        .register_rpc("t", "victim", move |_args: Vec<Term>| async move {
            Ok(Term::Pid(victim))
        });
    let mut erl = Erl::start("kl_e", "c", epmd, &[]);
    assert_eq!(
        erl.eval(
            "N = 'kl_a@127.0.0.1', V = rpc:call(N, t, victim, []), is_pid(V) andalso node(V) =:= N"
        ),
        "true"
    );
    // One Erlang process links to it (trapping exits), another monitors it.
    assert_eq!(
        erl.eval(
            "Shell = self(), \
             L = spawn(fun() -> process_flag(trap_exit, true), link(V), \
                 receive X -> Shell ! {linker_got, X} end end), \
             M = spawn(fun() -> R = monitor(process, V), Shell ! {ref, R}, \
                 receive X -> Shell ! {monitor_got, X} end end), \
             receive {ref, MRef} -> ok after 5000 -> timeout end"
        ),
        "ok"
    );
    // Both signals have reached the ergo node.
    until("the link and the monitor", || {
        a.process_info(victim)
            .is_some_and(|i| i.links.len() == 1 && i.monitored_by.len() == 1)
    })
    .await;
    let ended = a.wait_exit(victim);
    a.spawn(move |ctx| async move { ctx.exit(victim, ergo::Reason::Kill) });
    assert_eq!(within("the kill", ended).await, ergo::Reason::Killed);
    // As between Erlang nodes: the link carries `killed` (not `kill`), and
    // so does the monitor.
    assert_eq!(
        erl.eval("receive {linker_got, X1} -> X1 =:= {'EXIT', V, killed} orelse X1 after 5000 -> timeout end"),
        "true"
    );
    assert_eq!(
        erl.eval("receive {monitor_got, X2} -> X2 =:= {'DOWN', MRef, process, V, killed} orelse X2 after 5000 -> timeout end"),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_two_ergo_nodes_breaks_a_link_between_them_with_noconnection_on_both_sides() {
    let epmd = free_port();
    let a = node("dc_a", "c", epmd).await;
    let b = node("dc_b", "c", epmd).await;
    let (p, mut p_rx) = reporter(&a);
    let (q, mut q_rx) = reporter(&b);
    a.send(p, Term::tuple([Term::atom("link"), Term::Pid(q)]))
        .unwrap();
    assert_eq!(report(&mut p_rx, 10).await, "linked");
    // The link has reached the other side.
    until("the link on b", || {
        b.process_info(q).is_some_and(|i| i.links == vec![p])
    })
    .await;
    assert_eq!(a.dist().nodes(), vec![b.name()]);
    assert!(a.dist().disconnect(b.name()));
    assert_eq!(
        report(&mut p_rx, 10).await,
        format!("{{'EXIT',{q},noconnection}}")
    );
    assert_eq!(
        report(&mut q_rx, 10).await,
        format!("{{'EXIT',{p},noconnection}}")
    );
    // The links are gone on both sides, and so is the connection.
    assert_eq!(a.process_info(p).unwrap().links, vec![]);
    assert_eq!(b.process_info(q).unwrap().links, vec![]);
    assert!(a.dist().nodes().is_empty());
    until("b sees the connection closed", || {
        b.dist().nodes().is_empty()
    })
    .await;
    // Both processes trap exits: they live on.
    assert!(a.is_alive(p) && b.is_alive(q));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_an_erl_node_with_a_wrong_cookie_fails_and_leaves_it_reachable_with_the_right_one()
 {
    let epmd = free_port();
    // The ergo node first, hosting the EPMD: an erl node started first
    // would leave an `epmd -daemon` of its own behind.
    let wrong = node("ck_wrong", "wrong", epmd).await;
    let mut erl = Erl::start("ck_e", "right", epmd, &[]);
    let erl_name = Atom::from(erl.name.as_str());
    assert!(
        !within("the refused connect", wrong.dist().connect(erl_name)).await,
        "connected with a wrong cookie"
    );
    assert!(wrong.dist().nodes().is_empty() && wrong.dist().hidden_nodes().is_empty());
    // Nor does the erl node keep a connection (pending or up) to it.
    assert_eq!(
        erl.eval(
            "NoConn = fun L(0) -> nodes(connected); L(K) -> \
               case nodes(connected) of [] -> []; _ -> timer:sleep(20), L(K - 1) end end, \
             NoConn(250)"
        ),
        "[]"
    );
    // A second try is refused the same way.
    assert!(!within("the second refused connect", wrong.dist().connect(erl_name)).await);
    // Another ergo node with the right cookie gets in, and the erl node
    // answers it.
    let right = node("ck_right", "right", epmd).await;
    assert!(within("the connect", right.dist().connect(erl_name)).await);
    assert_eq!(right.dist().nodes(), vec![erl_name]);
    assert_eq!(
        right
            .dist()
            .rpc_call(erl_name, "erlang", "node", vec![], Duration::from_secs(5))
            .await,
        Ok(Term::Atom(erl_name))
    );
    // Having answered, the erl node lists only that node.
    assert_eq!(erl.eval("nodes()"), "['ck_right@127.0.0.1']");
    assert!(wrong.dist().nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_messages_from_several_erlang_processes_at_once_arrive_whole_and_each_intact() {
    let epmd = free_port();
    let a = node("big_a", "c", epmd).await;
    echo(&a, "echo");
    let mut erl = Erl::start("big_e", "c", epmd, &[]);
    assert_eq!(erl.eval("N = 'big_a@127.0.0.1', net_adm:ping(N)"), "pong");
    // Four processes each make three binaries of 1 to 3 MiB, each size
    // different and none a multiple of a fragment, and send them all at
    // once on the one connection: Erlang fragments each message and
    // interleaves the fragments of messages from different processes. The
    // echo process sends each back; its sender compares it with what it
    // sent.
    assert_eq!(
        erl.eval(
            "Shell = self(), \
             Sender = fun(S) -> spawn(fun() -> \
                 Bins = [{I, crypto:strong_rand_bytes(1048576 + 350011 * S + 123457 * I)} || I <- lists:seq(1, 3)], \
                 Shell ! {ready, self()}, \
                 receive go -> ok end, \
                 [{echo, N} ! {self(), {S, I, B}} || {I, B} <- Bins], \
                 Res = [receive {echo, {S, I, Got}} -> {I, byte_size(Got), Got =:= B} after 30000 -> {I, timeout} end || {I, B} <- Bins], \
                 Shell ! {done, S, [{I, byte_size(B)} || {I, B} <- Bins], Res} end) end, \
             Senders = [Sender(S) || S <- lists:seq(1, 4)], \
             [receive {ready, P} -> ok after 30000 -> timeout end || P <- Senders], \
             [P ! go || P <- Senders], ok"
        ),
        "ok"
    );
    assert_eq!(
        erl.eval_timeout(
            "Done = lists:sort([receive {done, S, Sizes, Res} -> {S, [{I, Size, true} || {I, Size} <- Sizes] =:= Res orelse Res} after 60000 -> timeout end || _ <- lists:seq(1, 4)]), Done",
            Duration::from_secs(90)
        ),
        "[{1,true},{2,true},{3,true},{4,true}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_atoms_than_the_atom_cache_holds_cross_both_ways_in_rounds_and_read_back_exactly() {
    let epmd = free_port();
    let a = node("ac_a", "c", epmd).await;
    // Checks each `{From, {B, Len, Atoms}}` against the atoms it must hold
    // (`ac_K` for K = (B * 211 + X) rem 5000, X from 0 to Len - 1), reports
    // the result and sends the message back as `{echo, {B, Len, Atoms}}`.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, i64, bool)>();
    let checker = a.spawn(move |mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            let Some(Term::Tuple(t)) = m.to_term() else {
                continue;
            };
            let [Term::Pid(from), body] = t.as_slice() else {
                continue;
            };
            let Some(&[Term::Int(b), Term::Int(len), ref atoms]) = body.as_tuple() else {
                continue;
            };
            let expected: Vec<Term> = (0..len)
                .map(|x| Term::atom(&format!("ac_{}", (b * 211 + x) % 5000)))
                .collect();
            let _ = tx.send((b, len, *atoms == Term::List(expected)));
            let _ = ctx.send(*from, Term::tuple([Term::atom("echo"), body.clone()]));
        }
        #[allow(unreachable_code)]
        ()
    });
    a.register(Atom::from("atoms"), checker).unwrap();
    let mut erl = Erl::start("ac_e", "c", epmd, &[]);
    assert_eq!(
        erl.eval(
            "N = 'ac_a@127.0.0.1', \
             Batch = fun(B, Len) -> {B, Len, [list_to_atom(\"ac_\" ++ integer_to_list((B * 211 + X) rem 5000)) || X <- lists:seq(0, Len - 1)]} end, \
             Round = fun(Bs, Len) -> \
                 Sent = [Batch(B, Len) || B <- Bs], \
                 [{atoms, N} ! {self(), M} || M <- Sent], \
                 Back = [receive {echo, {B, L, _} = Got} -> Got =:= M orelse {B, L, wrong} after 10000 -> {M, timeout} end || {B, L, _} = M <- Sent], \
                 lists:usort(Back) end, \
             ok"
        ),
        "ok"
    );
    // 5000 distinct atoms, more than the 2048 slots of either side's atom
    // cache, in rounds that reuse them in other orders: slots are taken
    // over by other atoms and atoms come back after their slot was lost.
    // Up to 250 atoms per message (a header names at most 255); the last
    // round has 400 per message, past what one header can name.
    let rounds: [(&str, i64, usize); 4] = [
        ("lists:seq(0, 24)", 250, 25),
        ("lists:reverse(lists:seq(0, 24))", 250, 25),
        ("[B rem 25 || B <- lists:seq(0, 74, 7)]", 250, 11),
        ("lists:seq(3, 24, 3)", 400, 8),
    ];
    for (bs, len, count) in rounds {
        assert_eq!(
            erl.eval(&format!("Round({bs}, {len})")),
            "[true]",
            "round {bs} with {len} atoms each: every message came back equal"
        );
        for _ in 0..count {
            let (b, got_len, exact) = within("a checked message", rx.recv())
                .await
                .expect("the checker runs");
            assert_eq!(got_len, len);
            assert!(exact, "message {b} of round {bs} read other atoms");
        }
    }
    assert!(rx.try_recv().is_err(), "no other messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_speaks_for_another_nodes_process_is_disconnected() {
    use ergo::dist::handshake::{self, Local};
    use tokio::io::AsyncWriteExt;
    let a = node_with("forge_a", "c", 0, |o| o.epmd_port = None).await;
    let port = a.dist().dist_port().unwrap();
    let target = a.spawn(|mut ctx| async move {
        ctx.receive().await;
    });
    let me = Local {
        name: "forger@127.0.0.1".into(),
        cookie: "c".into(),
        flags: handshake::flags::MANDATORY_25
            | handshake::flags::MANDATORY_26
            | handshake::flags::PUBLISHED,
        creation: 7,
    };
    let elsewhere = ergo::Pid::new(Atom::from("elsewhere@127.0.0.1"), 40, 0, 1);
    let own = ergo::Pid::new(Atom::from("forger@127.0.0.1"), 41, 0, 7);
    // LINK {1, From, To}, from a process of a third node, then the same
    // from one of the peer's own: the first closes the connection.
    for (from, refused) in [(elsewhere, true), (own, false)] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        within("the handshake", handshake::initiate(&mut s, &me, 6))
            .await
            .unwrap();
        let control = Term::tuple([Term::Int(1), Term::Pid(from), Term::Pid(target)]);
        let mut frame = vec![112];
        frame.extend(ergo::encode(&control));
        let mut bytes = (frame.len() as u32).to_be_bytes().to_vec();
        bytes.extend(frame);
        s.write_all(&bytes).await.unwrap();
        let linked = || {
            a.process_info(target)
                .is_some_and(|i| i.links.contains(&from))
        };
        if refused {
            assert!(
                closed_within(&mut s, Duration::from_secs(5)).await,
                "a forged sender left the connection open"
            );
            assert!(!linked(), "the forged link was made");
        } else {
            within("the link", async {
                while !linked() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
    }
}

/// Whether the other side closes `s` within `limit` (what it sends
/// meanwhile, ticks say, is read and dropped).
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_to_a_frozen_peer_is_suspended_at_the_busy_limit_and_resumes_with_nothing_lost() {
    // Erlang suspends a process that sends to a busy distribution port
    // (more than dist_buf_busy_limit queued) until the port is not busy;
    // send_nosuspend then answers false.
    let epmd = free_port();
    let a = node_with("bp_a", "c", epmd, |o| {
        o.dist_buf_busy_limit = 256 << 10;
    })
    .await;
    let mut erl = Erl::start("bp_e", "c", epmd, &[]);
    assert_eq!(
        erl.eval(
            "Sink = spawn(fun() -> L = fun L(N) -> receive {count, P} -> P ! {counted, N}, L(N); \
             _ -> L(N + 1) end end, L(0) end), register(sink, Sink), ok"
        ),
        "ok"
    );
    let erl_name = Atom::from(erl.name.as_str());
    assert!(a.dist().connect(erl_name).await);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    erl.signal("STOP");
    {
        let (sent, stop) = (sent.clone(), stop.clone());
        a.spawn(move |ctx| async move {
            let chunk = Term::Binary(vec![5u8; 64 << 10].into());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ctx.send((Atom::from("sink"), erl_name), chunk.clone())
                    .unwrap();
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            let _ = done_tx.send(());
        });
    }
    // The kernel's socket buffers take some megabytes; past them, the
    // sender stops at the busy limit.
    let mut last = u64::MAX;
    let settled = within("the sender to be suspended", async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = sent.load(std::sync::atomic::Ordering::Relaxed);
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await;
    assert!(
        settled * 64 < 64 << 10,
        "the sender sent {settled} × 64 KiB to a frozen peer before it was suspended"
    );
    // Another process: send_nosuspend does not send to the busy
    // connection, and does send to this node.
    let local = a.spawn(|mut ctx| async move {
        ctx.receive().await;
    });
    let nosuspend = in_process(&a, move |ctx| async move {
        (
            ctx.send_nosuspend((Atom::from("sink"), erl_name), Term::atom("x")),
            ctx.send_nosuspend(local, Term::atom("y")),
        )
    })
    .await;
    assert_eq!(nosuspend, (Ok(false), Ok(true)));
    // Thawed, the peer reads everything; the sender resumes.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    erl.signal("CONT");
    within("the sender to resume and stop", done_rx)
        .await
        .unwrap();
    let total = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        erl.eval(&format!(
            "W = fun W(K) -> sink ! {{count, self()}}, receive {{counted, N}} when N >= {total} -> N; \
             {{counted, _}} when K > 0 -> timer:sleep(50), W(K - 1); {{counted, N}} -> N end end, W(200)"
        )),
        total.to_string(),
        "every message sent arrived"
    );
}

/// A process registered as `name` on `node` that hands every message to
/// the test, as text.
fn sink(node: &Node, name: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pid = node.spawn(move |mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            if tx.send(m.to_string()).is_err() {
                break;
            }
        }
    });
    node.register(Atom::from(name), pid).unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_that_connect_to_each_other_at_once_end_with_one_connection_and_every_message() {
    // dist_util's arbitration: each side's accept answers the other's
    // attempt with ok_simultaneous (lower name: gives its own attempt up)
    // or nok (higher name: its own attempt goes on).
    let epmd = free_port();
    let a = node("sim_a", "c", epmd).await;
    let b = node("sim_b", "c", epmd).await;
    let mut at_a = sink(&a, "sink");
    let mut at_b = sink(&b, "sink");
    for round in 0..25i64 {
        // Apart, with nothing on its way: the last round's traffic (the pg
        // scopes meeting, a `discover` answered after the disconnection,
        // as pg answers it in Erlang too) may connect them anew, so the
        // two must see no connection before and after a quiet spell.
        within("both sides apart and quiet", async {
            loop {
                a.dist().disconnect(b.name());
                if a.dist().nodes().is_empty() && b.dist().nodes().is_empty() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if a.dist().nodes().is_empty() && b.dist().nodes().is_empty() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        let (ra, rb) = tokio::join!(
            async { a.send((Atom::from("sink"), b.name()), Term::Int(round)) },
            async { b.send((Atom::from("sink"), a.name()), Term::Int(round)) },
        );
        ra.unwrap();
        rb.unwrap();
        for (side, rx) in [("b", &mut at_b), ("a", &mut at_a)] {
            let got = within(&format!("round {round}'s message at {side}"), rx.recv())
                .await
                .unwrap();
            assert_eq!(got, round.to_string(), "at {side}");
        }
        assert_eq!(a.dist().nodes(), vec![b.name()], "round {round}");
        assert_eq!(b.dist().nodes(), vec![a.name()], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erlang_node_and_ergo_connecting_to_each_other_at_once_lose_no_message() {
    // Named both ways round: `zz` above the Erlang node's name, `aa` below.
    for name in ["zz_sim", "aa_sim"] {
        // (A fresh EPMD each time: the first node hosts it.)
        let epmd = free_port();
        let a = node(name, "c", epmd).await;
        let mut at_a = sink(&a, "sink");
        let mut erl = Erl::start(&format!("m_{name}"), "c", epmd, &[]);
        assert_eq!(
            erl.eval(
                "Fwd = spawn(fun F() -> receive {get, P} -> receive M -> P ! {got, M} end end, F() end), \
                 register(sink, Fwd), ok"
            ),
            "ok"
        );
        let erl_name = Atom::from(erl.name.as_str());
        for round in 0..8i64 {
            // Apart on both sides, and still after a quiet spell (what the
            // last round set off, global's and pg's exchanges, may reach
            // for the other node once more, as it may between Erlang nodes).
            let mut tries = 0;
            loop {
                if a.dist().nodes().contains(&erl_name) {
                    a.dist().disconnect(erl_name);
                }
                until("the disconnection", || a.dist().nodes().is_empty()).await;
                let seen = erl.eval(
                    "(fun W(0) -> still; W(K) -> case nodes() of [] -> gone; _ -> timer:sleep(10), W(K - 1) end end)(300)",
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                if seen == "gone" && a.dist().nodes().is_empty() && erl.eval("nodes()") == "[]" {
                    break;
                }
                tries += 1;
                assert!(
                    tries < 10,
                    "{name} round {round}: the nodes keep reconnecting (erl: {seen}, ergo: {:?})",
                    a.dist().nodes()
                );
            }
            // Both send at the same instant of the wall clock.
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 300;
            let erl_send = format!(
                "(fun() -> D = {at} - erlang:system_time(millisecond), D > 0 andalso timer:sleep(D) end)(), \
                 {{sink, {}}} ! {round}, ok",
                a.name()
            );
            let wait = std::time::UNIX_EPOCH + Duration::from_millis(at as u64);
            let a2 = a.clone();
            let rust = tokio::spawn(async move {
                if let Ok(d) = wait.duration_since(std::time::SystemTime::now()) {
                    tokio::time::sleep(d).await;
                }
                a2.send((Atom::from("sink"), erl_name), Term::Int(round))
            });
            assert_eq!(erl.eval(&erl_send), "ok");
            rust.await.unwrap().unwrap();
            let got = within("erlang's message", at_a.recv()).await.unwrap();
            assert_eq!(got, round.to_string(), "{name}, round {round}");
            assert_eq!(
                erl.eval(&format!(
                    "sink ! {{get, self()}}, receive {{got, M{round}}} -> M{round} after 5000 -> timeout end"
                )),
                round.to_string(),
                "{name}, round {round}"
            );
            assert_eq!(a.dist().nodes(), vec![erl_name]);
        }
        drop(erl);
        a.stop(Duration::from_secs(1)).await;
    }
}

/// A request that writes its own term (`#[derive(Term)]`).
#[derive(ergo::Term, Debug, Clone, PartialEq)]
enum Shape {
    Add { a: i64, b: i64 },
    Name(String),
}

/// A request whose term is built each time it is written (no direct
/// writer: the `ToTerm` default).
struct Built(i64);

impl ergo::etf::ToTerm for Built {
    fn to_term(&self) -> Term {
        Term::tuple([Term::atom("built"), Term::Int(self.0)])
    }
}

/// Calls to another node carry a lent term, a typed request written
/// without a term built for it, and a request with no direct writer, each
/// arriving at a real Erlang server as the `{'$gen_call', From, Request}`
/// that `gen_server:call` sends, by pid and by name; and the lent term is
/// the caller's still.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_lent_typed_or_built_reach_an_erlang_server_as_gen_server_call_sends_them() {
    let epmd = free_port();
    let a = node("rq_a", "c", epmd).await;
    let mut erl = Erl::start("rq_e", "c", epmd, &[]);
    assert_eq!(
        erl.eval(
            "P = spawn(fun L() -> receive {'$gen_call', {Pid, _} = From, Req} when is_pid(Pid) -> \
             gen:reply(From, {got, Req}), L() end end), register(shapes, P), ok"
        ),
        "ok"
    );
    let erl_name = Atom::from(erl.name.as_str());
    let got = in_process(&a, move |mut ctx| async move {
        let by_pid = whereis_on(ctx.node(), erl_name, "shapes").await;
        let by_name = (Atom::from("shapes"), erl_name);
        let lent = Term::tuple([Term::Pid(ctx.pid()), Term::binary("lent"), Term::Int(7)]);
        let t = Duration::from_secs(5);
        let mut out = Vec::new();
        for _ in 0..2 {
            out.push(ctx.call(by_pid, &lent, t).await.map(|r| r.to_string()));
            out.push(ctx.call(by_name, &lent, t).await.map(|r| r.to_string()));
        }
        let typed = Shape::Add { a: 1, b: 2 };
        out.push(ctx.call(by_pid, &typed, t).await.map(|r| r.to_string()));
        out.push(
            ctx.call(by_name, Shape::Name("x".into()), t)
                .await
                .map(|r| r.to_string()),
        );
        out.push(ctx.call(by_pid, Built(5), t).await.map(|r| r.to_string()));
        out.push(ctx.call(by_name, &Built(6), t).await.map(|r| r.to_string()));
        (ctx.pid(), lent, out)
    })
    .await;
    let (me, lent, out) = got;
    let lent_text = format!("{{got,{{{me},<<\"lent\">>,7}}}}");
    assert_eq!(
        lent,
        Term::tuple([Term::Pid(me), Term::binary("lent"), Term::Int(7)])
    );
    let want = [
        lent_text.as_str(),
        &lent_text,
        &lent_text,
        &lent_text,
        "{got,{add,#{a => 1,b => 2}}}",
        "{got,{name,<<\"x\">>}}",
        "{got,{built,5}}",
        "{got,{built,6}}",
    ];
    let out: Vec<String> = out.into_iter().map(|r| r.expect("a reply")).collect();
    assert_eq!(out, want);
}
