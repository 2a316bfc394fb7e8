//! Typed clients that reach a server on any node, calls with aliases,
//! spawning on other nodes and `erpc:call`, against other ergo nodes and
//! real Erlang nodes on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{Erl, free_port};
use ergo::dist::rpc::RpcFailure;
use ergo::dist::spawn::{ErpcError, SpawnError, SpawnOptions};
use ergo::gen_server::CallError;
use ergo::{Atom, Message, Node, Reason, Term, gen_server};

/// A counter whose calls are the same terms an Erlang server speaks:
/// `{add, N}`, `get`, `{slow, Ms}` and the cast `reset`.
struct Counter {
    n: i64,
}

#[gen_server]
impl Counter {
    fn init(n: i64) -> Self {
        Counter { n }
    }

    #[call]
    fn add(&mut self, n: i64) -> i64 {
        self.n += n;
        self.n
    }

    #[call]
    fn get(&self) -> i64 {
        self.n
    }

    /// Replies after `ms` milliseconds.
    #[call]
    async fn slow(&self, ms: u64) -> i64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.n
    }

    #[cast]
    fn reset(&mut self) {
        self.n = 0;
    }
}

async fn node(name: &str, epmd: u16) -> Node {
    common::dist_node(name, "signals", epmd).await
}

/// Runs `f` in a process of `node` and gives its result (within 20 s).
async fn in_process<T: Send + 'static, F, Fut>(node: &Node, f: F) -> T
where
    F: FnOnce(ergo::Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn(move |ctx| async move {
        let _ = tx.send(f(ctx).await);
    });
    tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("the process answered within 20 s")
        .expect("the process ran to its end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_calls_a_gen_server_on_another_ergo_node_by_name_and_by_pid() {
    let epmd = free_port();
    let a = node("sig_a1", epmd).await;
    let b = node("sig_b1", epmd).await;
    let served = CounterRef::start_named(&b, "counter", 10).await.unwrap();
    let pid = served.pid().unwrap();

    let by_name = CounterRef::at(&a, (Atom::from("counter"), b.name()));
    assert_eq!(by_name.add(5).await, Ok(15));
    let by_pid = CounterRef::at(&a, pid);
    assert_eq!(by_pid.get().await, Ok(15));
    assert_eq!(
        by_name.pid(),
        None,
        "a name on another node has no pid here"
    );
    assert_eq!(by_pid.pid(), Some(pid));

    // A cast and a call from the same node arrive in order.
    by_name.reset();
    assert_eq!(by_name.get().await, Ok(0));

    // No server of that name there.
    let nobody = CounterRef::at(&a, (Atom::from("nobody_here"), b.name()));
    assert_eq!(nobody.get().await, Err(CallError::NoProc));

    // Timed out, and the late reply goes nowhere.
    assert_eq!(
        by_pid.slow_timeout(300, Duration::from_millis(50)).await,
        Err(CallError::Timeout(Duration::from_millis(50)))
    );
    assert_eq!(by_pid.add(1).await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_call_fails_with_noconnection_when_the_servers_node_goes_away() {
    let epmd = free_port();
    let a = node("sig_a2", epmd).await;
    let b = node("sig_b2", epmd).await;
    CounterRef::start_named(&b, "counter", 1).await.unwrap();
    let client = CounterRef::at(&a, (Atom::from("counter"), b.name()));
    assert_eq!(client.get().await, Ok(1));

    let call = tokio::spawn(async move { client.slow(5_000).await });
    // The call is on its way once the server has taken it.
    let server = b.whereis("counter").unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while b
            .process_info(server)
            .is_some_and(|i| i.messages_handled < 2)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server took the call");
    assert!(a.dist().disconnect(b.name()));
    let got = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("the call ended at once")
        .unwrap();
    assert_eq!(got, Err(CallError::NoConnection));

    // A node that cannot be reached at all.
    let nowhere = CounterRef::at(&a, (Atom::from("counter"), Atom::from("gone@127.0.0.1")));
    assert_eq!(nowhere.get().await, Err(CallError::NoConnection));
}

/// An Erlang process registered as `Name` that serves the counter's
/// protocol, replying with `gen:reply/2` as `gen_server` does.
fn erlang_counter(erl: &mut Erl, name: &str) {
    let started = erl.eval(&format!(
        r#"Loop = fun L(N) -> receive
              {{'$gen_call', From, {{add, X}}}} -> gen:reply(From, N + X), L(N + X);
              {{'$gen_call', From, get}} -> gen:reply(From, N), L(N);
              {{'$gen_call', From, {{slow, Ms}}}} -> timer:sleep(Ms), gen:reply(From, N), L(N);
              {{'$gen_call', From, bad}} -> gen:reply(From, <<"not a number">>), L(N);
              {{'$gen_cast', reset}} -> L(0)
           end end,
           P = spawn(fun() -> Loop(0) end), register({name}, P)"#
    ));
    assert_eq!(started, "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_calls_an_erlang_server_by_name_and_by_pid() {
    let epmd = free_port();
    let a = node("sig_a3", epmd).await;
    let mut erl = Erl::start("sig_e3", "signals", epmd, &[]);
    erlang_counter(&mut erl, "counter");
    let erl_node = Atom::from(erl.name.as_str());

    let by_name = CounterRef::at(&a, (Atom::from("counter"), erl_node));
    assert_eq!(by_name.add(40).await, Ok(40));
    assert_eq!(by_name.add(2).await, Ok(42));
    by_name.reset();
    assert_eq!(by_name.get().await, Ok(0));

    let pid = a
        .call(
            (Atom::from("rex"), erl_node),
            rex_whereis("counter"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let Term::Pid(pid) = pid else {
        panic!("whereis answered {pid}")
    };
    let by_pid = CounterRef::at(&a, pid);
    assert_eq!(by_pid.add(7).await, Ok(7));

    // A reply of another type is refused with what was expected.
    let bad = a
        .call(
            (Atom::from("counter"), erl_node),
            Term::atom("bad"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(bad, Ok(Term::binary("not a number")));
    // From another node the reply is decoded, whatever `local` would pick.
    let typed: ergo::ServerRef<Counter> = ergo::ServerRef::at(&a, pid);
    let decoded = typed
        .call_map::<i64>(CounterCall::Get, Duration::from_secs(5), |_| None)
        .await;
    assert_eq!(decoded, Ok(7));

    // The Erlang process dies mid-call: the monitor says why.
    let call = tokio::spawn({
        let c = by_pid.clone();
        async move { c.slow(5_000).await }
    });
    // Killed while it serves the call (sleeping in it).
    let mut serving = false;
    for _ in 0..400 {
        if erl.eval("element(2, process_info(whereis(counter), current_function))")
            == "{timer,sleep,1}"
        {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(serving, "the Erlang server took the call");
    assert_eq!(erl.eval("exit(whereis(counter), kill)"), "true");
    let got = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("the call ended at once")
        .unwrap();
    assert_eq!(got, Err(CallError::Exited(Reason::Killed)));
}

/// `rpc:call(Node, erlang, whereis, [Name])` as rex takes it.
fn rex_whereis(name: &str) -> Term {
    Term::tuple([
        Term::atom("call"),
        Term::atom("erlang"),
        Term::atom("whereis"),
        Term::List(vec![Term::atom(name)]),
        Term::atom("user"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_reply_that_does_not_decode_is_refused_with_what_was_expected() {
    let epmd = free_port();
    let a = node("sig_a4", epmd).await;
    let mut erl = Erl::start("sig_e4", "signals", epmd, &[]);
    // A server that answers `get` with a binary.
    assert_eq!(
        erl.eval(
            r#"P = spawn(fun L() -> receive {'$gen_call', From, _} -> gen:reply(From, <<"x">>), L() end end),
               register(counter, P)"#
        ),
        "true"
    );
    let client = CounterRef::at(&a, (Atom::from("counter"), Atom::from(erl.name.as_str())));
    match client.get().await {
        Err(CallError::BadReply(why)) => {
            assert!(why.contains("integer"), "{why}");
            assert!(why.contains("<<\"x\">>"), "{why}");
        }
        other => panic!("expected a reply that does not decode, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_after_a_call_timeout_never_reaches_the_callers_mailbox() {
    // A local server replying after the caller gave up.
    let node = Node::builder("late@localhost").start().unwrap();
    let server = CounterRef::start_named(&node, "slowpoke", 3).await.unwrap();
    let server_pid = server.pid().unwrap();
    let left = in_process(&node, move |mut ctx| async move {
        let request = Term::tuple([Term::atom("slow"), Term::Int(100)]);
        let got = ctx
            .call("slowpoke", request, Duration::from_millis(10))
            .await;
        assert_eq!(got, Err(CallError::Timeout(Duration::from_millis(10))));
        // The server replies, then serves this call: by its answer the late
        // reply has been sent.
        let again = ctx
            .call(server_pid, Term::atom("get"), Duration::from_secs(5))
            .await;
        assert_eq!(again, Ok(Term::Int(3)));
        let mut left = Vec::new();
        while let Some(m) = ctx.try_receive() {
            left.push(m.to_string());
        }
        left
    })
    .await;
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_from_an_erlang_server_never_reaches_the_callers_mailbox() {
    let epmd = free_port();
    let a = node("sig_a5", epmd).await;
    let mut erl = Erl::start("sig_e5", "signals", epmd, &[]);
    // Replies after 200 ms, then tells the caller it did.
    assert_eq!(
        erl.eval(
            r#"P = spawn(fun L() -> receive {'$gen_call', {Pid, _} = From, _} ->
                   timer:sleep(200), gen:reply(From, late), Pid ! replied, L() end end),
               register(late, P)"#
        ),
        "true"
    );
    let erl_node = Atom::from(erl.name.as_str());
    let left = in_process(&a, move |mut ctx| async move {
        let got = ctx
            .call(
                (Atom::from("late"), erl_node),
                Term::atom("hi"),
                Duration::from_millis(20),
            )
            .await;
        assert_eq!(got, Err(CallError::Timeout(Duration::from_millis(20))));
        // `replied` comes after the reply, over the same connection.
        let mut left = Vec::new();
        loop {
            let m = ctx
                .receive_timeout(Duration::from_secs(5))
                .await
                .expect("the server said it replied");
            let done = m.to_term() == Some(Term::atom("replied"));
            left.push(m.to_string());
            if done {
                break left;
            }
        }
    })
    .await;
    assert_eq!(left, vec!["replied".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_on_an_erlang_node_links_and_monitors_as_spawn_opt_does() {
    let epmd = free_port();
    let a = node("sig_a6", epmd).await;
    let erl = Erl::start("sig_e6", "signals", epmd, &[]);
    let erl_node = Atom::from(erl.name.as_str());
    let (pid, reference, exit, down) = in_process(&a, move |mut ctx| async move {
        ctx.set_trap_exit(true);
        let opts = SpawnOptions {
            link: true,
            monitor: true,
        };
        let (pid, reference) = ctx
            .spawn_on(erl_node, "erlang", "exit", vec![Term::atom("boom")], opts)
            .await
            .expect("spawned");
        let mut exit = None;
        let mut down = None;
        while exit.is_none() || down.is_none() {
            match ctx.receive_timeout(Duration::from_secs(5)).await {
                Some(Message::Exit { from, reason }) => exit = Some((from, reason)),
                Some(Message::Down(d)) => down = Some((d.reference, d.object, d.reason)),
                Some(other) => panic!("unexpected {other}"),
                None => panic!("no exit or down within 5 s"),
            }
        }
        (pid, reference, exit.unwrap(), down.unwrap())
    })
    .await;
    assert_eq!(pid.node, erl_node);
    let boom = Reason::from_term(Term::atom("boom"));
    assert_eq!(exit, (pid, boom.clone()));
    assert_eq!(down, (reference.unwrap(), Term::Pid(pid), boom));

    // A process that ends normally: the monitor says so, the link is quiet.
    let (down, quiet) = in_process(&a, move |mut ctx| async move {
        let opts = SpawnOptions {
            link: true,
            monitor: true,
        };
        let (_, reference) = ctx
            .spawn_on(erl_node, "timer", "sleep", vec![Term::Int(50)], opts)
            .await
            .expect("spawned");
        let down = ctx.receive_timeout(Duration::from_secs(5)).await;
        let quiet = ctx.receive_timeout(Duration::from_millis(100)).await;
        (down.map(|m| m.to_term()), (reference, quiet.is_none()))
    })
    .await;
    let (reference, quiet) = quiet;
    let Some(Some(Term::Tuple(d))) = down else {
        panic!("no 'DOWN': {down:?}")
    };
    assert_eq!(d[0], Term::atom("DOWN"));
    assert_eq!(d[1], Term::Ref(reference.unwrap()));
    assert_eq!(d[4], Term::atom("normal"));
    assert!(
        quiet,
        "a normal exit through a link leaves a non-trapping process alone"
    );

    // No way to the node.
    let refused = in_process(&a, |ctx| async move {
        ctx.spawn_on(
            "nowhere@127.0.0.1",
            "erlang",
            "node",
            vec![],
            SpawnOptions::default(),
        )
        .await
    })
    .await;
    assert_eq!(refused, Err(SpawnError::NoConnection));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erpc_call_runs_functions_on_an_erlang_node_with_erpcs_results() {
    let epmd = free_port();
    let a = node("sig_a7", epmd).await;
    let erl = Erl::start("sig_e7", "signals", epmd, &[]);
    let e = Atom::from(erl.name.as_str());
    let t = Duration::from_secs(5);
    let list = Term::List(vec![Term::Int(1), Term::Int(2), Term::Int(3)]);
    assert_eq!(
        a.dist()
            .erpc_call(e, "erlang", "length", vec![list], t)
            .await,
        Ok(Term::Int(3))
    );
    assert_eq!(
        a.dist().erpc_call(e, "erlang", "node", vec![], t).await,
        Ok(Term::Atom(e))
    );
    assert_eq!(
        a.dist()
            .erpc_call(e, "erlang", "throw", vec![Term::atom("ball")], t)
            .await,
        Err(ErpcError::Exception(RpcFailure::Throw(Term::atom("ball"))))
    );
    assert_eq!(
        a.dist()
            .erpc_call(e, "erlang", "exit", vec![Term::atom("bye")], t)
            .await,
        Err(ErpcError::Exception(RpcFailure::Exit(Term::atom("bye"))))
    );
    assert_eq!(
        a.dist()
            .erpc_call(e, "erlang", "error", vec![Term::atom("badarg")], t)
            .await,
        Err(ErpcError::Exception(RpcFailure::Error(Term::atom(
            "badarg"
        ))))
    );
    assert_eq!(
        a.dist()
            .erpc_call(e, "no_such_module", "f", vec![], t)
            .await,
        Err(ErpcError::Exception(RpcFailure::Error(Term::atom("undef"))))
    );
    assert_eq!(
        a.dist()
            .erpc_call(
                e,
                "timer",
                "sleep",
                vec![Term::Int(2_000)],
                Duration::from_millis(50)
            )
            .await,
        Err(ErpcError::Timeout)
    );
    assert_eq!(
        a.dist()
            .erpc_call("nowhere@127.0.0.1", "erlang", "node", vec![], t)
            .await,
        Err(ErpcError::NoConnection)
    );

    // And between two ergo nodes, to a registered Rust function.
    let b = node("sig_b7", epmd).await;
    b.dist()
        .register_rpc("math", "double", |args: Vec<Term>| async move {
            match args.as_slice() {
                [Term::Int(n)] => Ok(Term::Int(2 * n)),
                _ => Err(RpcFailure::Error(Term::atom("badarg"))),
            }
        });
    assert_eq!(
        a.dist()
            .erpc_call(b.name(), "math", "double", vec![Term::Int(21)], t)
            .await,
        Ok(Term::Int(42))
    );
    assert_eq!(
        a.dist()
            .erpc_call(b.name(), "math", "double", vec![], t)
            .await,
        Err(ErpcError::Exception(RpcFailure::Error(Term::atom(
            "badarg"
        ))))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_up_a_name_no_atom_has_finds_nothing_and_adds_no_atom() {
    let node = Node::builder("lookups@localhost").start().unwrap();
    let names = [
        "never_seen_by_whereis_7f3a",
        "never_seen_by_send_7f3a",
        "never_seen_by_monitor_7f3a",
        "never_seen_by_rpc_7f3a",
        "never_seen_by_env_7f3a",
    ];
    assert_eq!(node.whereis(names[0]), None);
    assert_eq!(
        node.send(names[1], Term::atom("hi")),
        Err(ergo::SendError::NotRegistered(Atom::UNDEFINED))
    );
    let down = in_process(&node, move |mut ctx| async move {
        let r = ctx.monitor(names[2]);
        let m = ctx.receive_timeout(Duration::from_secs(5)).await;
        (r, m.and_then(|m| m.to_term()))
    })
    .await;
    let Some(Term::Tuple(d)) = down.1 else {
        panic!("no 'DOWN' for a name nobody has")
    };
    assert_eq!(
        (d[1].clone(), d[4].clone()),
        (Term::Ref(down.0), Term::atom("noproc"))
    );
    assert_eq!(
        node.dist().apply_rpc(names[3], names[3], vec![]).await,
        Err(RpcFailure::Error(Term::atom("undef")))
    );
    assert_eq!(node.get_env(names[4], names[4]), None);
    for n in names {
        assert_eq!(Atom::existing(n), None, "{n} became an atom");
    }
}
