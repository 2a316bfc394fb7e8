//! The `interop_node` example against real Erlang and Elixir nodes, each an
//! OS process on 127.0.0.1: pings, `nodes()`, gen_server calls and casts,
//! links, monitors and exit signals in both directions, RPC both ways, a
//! supervisor restarting a crashed server, 10 MB binaries each way,
//! 100,000 messages in order, wrong cookies, `global` names from Elixir
//! and `pg` groups.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Erl, InteropNode, free_port};

/// The example node `r` and an `erl` node `e`, with the variable `N`
/// bound to `r`'s name and `W` to a fresh lab worker owned by the shell.
fn setup(tag: &str) -> (InteropNode, Erl) {
    let port = free_port();
    let r = InteropNode::start(&format!("r_{tag}"), "cookie", port);
    let mut e = Erl::start(&format!("e_{tag}"), "cookie", port, &[]);
    assert_eq!(
        e.eval(&format!("N = '{}', net_adm:ping(N)", r.name)),
        "pong"
    );
    ok(
        &mut e,
        "{ok, W} = gen_server:call({lab, N}, {spawn, self()}), ok",
    );
    (r, e)
}

/// Evaluates a set-up line, which ends in `ok` when every match in it
/// held.
fn ok(e: &mut Erl, exprs: &str) {
    assert_eq!(e.eval(exprs), "ok", "set-up failed: {exprs}");
}

/// The next message the shell gets (within 5 s). Each call binds a fresh
/// variable: the shell keeps bindings from line to line.
fn next(e: &mut Erl) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    e.eval(&format!(
        "receive Next{n} -> Next{n} after 5000 -> timeout end"
    ))
}

#[test]
fn erlang_calls_and_casts_the_example_servers() {
    let (r, mut e) = setup("calls");
    assert_eq!(e.eval("nodes()"), format!("['{}']", r.name));
    assert_eq!(e.eval("gen_server:call({counter, N}, get)"), "0");
    assert_eq!(e.eval("gen_server:call({counter, N}, {add, 5})"), "5");
    assert_eq!(e.eval("gen_server:call({counter, N}, {add, -2})"), "3");
    // A request the server does not have: an error term, and it lives on.
    assert_eq!(
        e.eval("gen_server:call({counter, N}, {mul, 5})"),
        r#"{error,{badcall,<<"expected get | {add, integer}, found {mul,5}">>}}"#
    );
    assert_eq!(e.eval("gen_server:cast({counter, N}, reset)"), "ok");
    assert_eq!(e.eval("gen_server:call({counter, N}, get)"), "0");
    // echo: calls reply the request; casts and plain messages send back.
    assert_eq!(
        e.eval("gen_server:call({echo, N}, {hello, [1, 2.5, <<\"bin\">>], #{k => v}})"),
        r#"{hello,[1,2.5,<<"bin">>],#{k => v}}"#
    );
    assert_eq!(
        e.eval("gen_server:call({echo, N}, self()) =:= self()"),
        "true"
    );
    ok(
        &mut e,
        "gen_server:cast({echo, N}, {send_to, self(), casted})",
    );
    assert_eq!(next(&mut e), "casted");
    ok(&mut e, "{echo, N} ! {self(), plain}, ok");
    assert_eq!(next(&mut e), "{echo,plain}");
    // The lab worker reports what it does not understand.
    ok(&mut e, "W ! {hello, there}, ok");
    assert_eq!(
        e.eval("{forward, W, {hello, there}} = receive M -> M after 5000 -> timeout end, ok"),
        "ok"
    );
}

#[test]
fn links_break_with_the_exit_reason_in_both_directions() {
    let (_r, mut e) = setup("links");
    // Erlang process linked to a Rust worker that exits.
    ok(
        &mut e,
        "Shell = self(), P = spawn(fun() -> process_flag(trap_exit, true), link(W), \
         W ! {exit, bye}, receive X -> Shell ! {p_got, X} end end), ok",
    );
    assert_eq!(
        e.eval("receive {p_got, {'EXIT', W, bye}} -> ok after 5000 -> timeout end"),
        "ok"
    );
    // Rust worker (trapping exits) linked to an Erlang process that exits.
    ok(
        &mut e,
        "{ok, W2} = gen_server:call({lab, N}, {spawn, self()}), W2 ! {trap_exit, true}, ok",
    );
    ok(
        &mut e,
        "P2 = spawn(fun() -> receive linked -> exit(byebye) end end), ok",
    );
    ok(&mut e, "W2 ! {link, P2}, W2 ! {send, P2, linked}, ok");
    assert_eq!(
        e.eval("receive {forward, W2, {'EXIT', P2, byebye}} -> ok after 5000 -> timeout end"),
        "ok"
    );
    // Unlinked again: the Erlang side's exit does not reach the worker.
    ok(
        &mut e,
        "P3 = spawn(fun() -> receive go -> exit(late) end end), ok",
    );
    ok(
        &mut e,
        "W2 ! {link, P3}, W2 ! {unlink, P3}, W2 ! {send, P3, go}, W2 ! marker, ok",
    );
    assert_eq!(
        e.eval("receive {forward, W2, M} -> M after 5000 -> timeout end"),
        "marker"
    );
    assert_eq!(
        e.eval("receive {forward, W2, M2} -> M2 after 300 -> none end"),
        "none"
    );
    // A worker that does not trap exits dies with its linked process.
    ok(
        &mut e,
        "{ok, W3} = gen_server:call({lab, N}, {spawn, self()}), Ref3 = monitor(process, W3), ok",
    );
    ok(
        &mut e,
        "P4 = spawn(fun() -> receive linked -> exit(crash) end end), W3 ! {link, P4}, W3 ! {send, P4, linked}, ok",
    );
    assert_eq!(
        e.eval("receive {'DOWN', Ref3, process, W3, R3} -> R3 after 5000 -> timeout end"),
        "crash"
    );
}

#[test]
fn monitors_by_pid_and_by_name_fire_in_both_directions() {
    let (r, mut e) = setup("monitors");
    // Erlang monitors a Rust worker.
    ok(&mut e, "Ref = monitor(process, W), W ! {exit, done}, ok");
    assert_eq!(
        e.eval("receive {'DOWN', Ref, process, W, Why} -> Why after 5000 -> timeout end"),
        "done"
    );
    // ... a registered name that is not there: noproc at once.
    assert_eq!(
        e.eval("Ref2 = monitor(process, {nobody, N}), receive {'DOWN', Ref2, process, Obj, R2} -> {Obj, R2} after 5000 -> timeout end"),
        format!("{{{{nobody,'{}'}},noproc}}", r.name)
    );
    // ... a registered server that crashes.
    ok(
        &mut e,
        "Ref3 = monitor(process, {crasher, N}), catch gen_server:call({crasher, N}, crash), ok",
    );
    assert_eq!(
        e.eval("receive {'DOWN', Ref3, process, _, R3} -> R3 after 5000 -> timeout end"),
        "boom"
    );
    // A Rust worker monitors an Erlang process, by pid.
    ok(
        &mut e,
        "{ok, V} = gen_server:call({lab, N}, {spawn, self()}), P = spawn(fun() -> receive go -> exit(gone) end end), V ! {monitor, P}, ok",
    );
    ok(
        &mut e,
        "{forward, V, {monitoring, P, MRef}} = receive Mon -> Mon after 5000 -> timeout end, P ! go, ok",
    );
    assert_eq!(
        e.eval("receive {forward, V, {'DOWN', MRef, process, P, Reason}} -> Reason after 5000 -> timeout end"),
        "gone"
    );
    // ... by registered name on the Erlang node.
    ok(
        &mut e,
        "P2 = spawn(fun() -> receive go -> exit(named_gone) end end), register(target, P2), V ! {monitor, {target, node()}}, ok",
    );
    ok(
        &mut e,
        "{forward, V, {monitoring, _, MRef2}} = receive Mon2 -> Mon2 after 5000 -> timeout end, P2 ! go, ok",
    );
    assert_eq!(
        e.eval("receive {forward, V, {'DOWN', MRef2, process, Obj2, R5}} -> {Obj2, R5} after 5000 -> timeout end"),
        format!("{{{{target,'{}'}},named_gone}}", e.name)
    );
    // ... a name not registered there: noproc.
    ok(&mut e, "V ! {monitor, {nobody, node()}}, ok");
    ok(
        &mut e,
        "{forward, V, {monitoring, _, MRef3}} = receive Mon3 -> Mon3 after 5000 -> timeout end, ok",
    );
    assert_eq!(
        e.eval(
            "receive {forward, V, {'DOWN', MRef3, process, _, R6}} -> R6 after 5000 -> timeout end"
        ),
        "noproc"
    );
    // A monitor taken back does not fire.
    ok(
        &mut e,
        "P3 = spawn(fun() -> receive go -> exit(x) end end), V ! {monitor, P3}, ok",
    );
    ok(
        &mut e,
        "{forward, V, {monitoring, P3, MRef4}} = receive Mon4 -> Mon4 after 5000 -> timeout end, ok",
    );
    ok(
        &mut e,
        "V ! {demonitor, MRef4}, V ! {send, P3, go}, V ! marker, ok",
    );
    assert_eq!(
        e.eval("receive {forward, V, Mk} -> Mk after 5000 -> timeout end"),
        "marker"
    );
    assert_eq!(
        e.eval("receive {forward, V, Late} -> Late after 300 -> none end"),
        "none"
    );
}

#[test]
fn exit_signals_cross_in_both_directions() {
    let (_r, mut e) = setup("exits");
    // exit/2 from Erlang kills a worker that does not trap exits...
    ok(&mut e, "Ref = monitor(process, W), exit(W, stop_it), ok");
    assert_eq!(
        e.eval("receive {'DOWN', Ref, process, W, R} -> R after 5000 -> timeout end"),
        "stop_it"
    );
    // ... reaches one that does as a message ...
    ok(
        &mut e,
        "{ok, W2} = gen_server:call({lab, N}, {spawn, self()}), W2 ! {trap_exit, true}, W2 ! {send, self(), trapping}, ok",
    );
    assert_eq!(next(&mut e), "trapping");
    ok(&mut e, "true = exit(W2, please), ok");
    assert_eq!(
        e.eval("Me = self(), receive {forward, W2, {'EXIT', Me, please}} -> ok after 5000 -> timeout end"),
        "ok"
    );
    // ... and kill cannot be trapped.
    ok(&mut e, "Ref2 = monitor(process, W2), exit(W2, kill), ok");
    assert_eq!(
        e.eval("receive {'DOWN', Ref2, process, W2, R2} -> R2 after 5000 -> timeout end"),
        "killed"
    );
    // exit/2 from a Rust worker to an Erlang process.
    ok(
        &mut e,
        "P = spawn(fun() -> process_flag(trap_exit, true), Me ! ready, receive X -> Me ! {p_got, X} end end), ok",
    );
    assert_eq!(next(&mut e), "ready");
    ok(
        &mut e,
        "{ok, W3} = gen_server:call({lab, N}, {spawn, self()}), W3 ! {exit, P, from_rust}, ok",
    );
    assert_eq!(
        e.eval("receive {p_got, {'EXIT', W3, from_rust}} -> ok after 5000 -> timeout end"),
        "ok"
    );
}

#[test]
fn rpc_works_both_ways_with_erlangs_results() {
    let (r, mut e) = setup("rpc");
    assert_eq!(e.eval("rpc:call(N, interop, add, [40, 2])"), "42");
    assert_eq!(e.eval("rpc:call(N, interop, echo, [{a, [b]}])"), "{a,[b]}");
    assert_eq!(e.eval("rpc:call(N, interop, sleep, [50])"), "ok");
    assert_eq!(
        e.eval("rpc:call(N, interop, nope, [1])"),
        "{badrpc,{'EXIT',{undef,[{interop,nope,[1],[]}]}}}"
    );
    assert_eq!(
        e.eval("rpc:call(N, interop, sleep, [3000], 100)"),
        "{badrpc,timeout}"
    );
    assert_eq!(e.eval("erpc:call(N, interop, add, [1, 2])"), "3");
    assert_eq!(
        e.eval("try erpc:call(N, interop, nope, []) catch error:{exception, Err, Stack} -> {Err, Stack} end"),
        "{undef,[{interop,nope,[],[]}]}"
    );
    assert_eq!(e.eval("rpc:cast(N, interop, echo, [x])"), "true");
    assert_eq!(e.eval("erpc:cast(N, interop, echo, [x])"), "ok");
    // Rust calls Erlang functions.
    ok(&mut e, "W ! {rpc, node(), erlang, node, []}, ok");
    assert_eq!(
        e.eval(
            "receive {forward, W, {rpc_result, Res}} -> Res =:= node() after 5000 -> timeout end"
        ),
        "true"
    );
    ok(&mut e, "W ! {rpc, node(), lists, reverse, [[1, 2, 3]]}, ok");
    assert_eq!(
        e.eval("receive {forward, W, {rpc_result, Res2}} -> Res2 after 5000 -> timeout end"),
        "[3,2,1]"
    );
    ok(&mut e, "W ! {rpc, node(), nomod, nofun, []}, ok");
    assert_eq!(
        e.eval("receive {forward, W, {rpc_result, Res3}} -> Res3 after 5000 -> timeout end"),
        "{badrpc,{'EXIT',{undef,[{nomod,nofun,[],[]}]}}}"
    );
    ok(
        &mut e,
        &format!(
            "W ! {{rpc, 'nonode_{}@127.0.0.1', erlang, node, []}}, ok",
            r.name.len()
        ),
    );
    assert_eq!(
        e.eval("receive {forward, W, {rpc_result, Res4}} -> Res4 after 15000 -> timeout end"),
        "{badrpc,nodedown}"
    );
}

#[test]
fn rust_calls_erlang_gen_servers() {
    let (_r, mut e) = setup("gencall");
    ok(
        &mut e,
        "W ! {call, {application_controller, node()}, which_applications}, ok",
    );
    assert_eq!(
        e.eval("receive {forward, W, {reply, Apps}} -> lists:keymember(kernel, 1, Apps) after 5000 -> timeout end"),
        "true"
    );
    ok(&mut e, "W ! {call, {nobody, node()}, hello}, ok");
    assert_eq!(
        e.eval("receive {forward, W, {reply, R}} -> R after 5000 -> timeout end"),
        "{error,noproc}"
    );
    // A server that dies during the call.
    ok(
        &mut e,
        "Srv = spawn(fun() -> receive {'$gen_call', _, _} -> exit(died) end end), W ! {call, Srv, hi}, ok",
    );
    assert_eq!(
        e.eval("receive {forward, W, {reply, R2}} -> R2 after 5000 -> timeout end"),
        "{error,died}"
    );
}

#[test]
fn the_supervisor_restarts_the_crasher_under_its_name() {
    let (_r, mut e) = setup("sup");
    assert_eq!(e.eval("gen_server:call({crasher, N}, ping)"), "pong");
    ok(&mut e, "MRef = erlang:monitor(process, {crasher, N}), ok");
    assert_eq!(
        e.eval("catch gen_server:call({crasher, N}, crash)"),
        format!(
            "{{'EXIT',{{boom,{{gen_server,call,[{{crasher,'{}'}},crash]}}}}}}",
            _r.name
        )
    );
    // The process behind the name did exit, with `boom`.
    assert_eq!(
        e.eval("receive {'DOWN', MRef, process, _, Why} -> Why after 5000 -> timeout end"),
        "boom"
    );
    // Restarted: answers again (retry briefly while the supervisor works).
    assert_eq!(
        e.eval("Try = fun T(0) -> gave_up; T(K) -> case catch gen_server:call({crasher, N}, ping, 500) of pong -> pong; _ -> timer:sleep(50), T(K - 1) end end, Try(40)"),
        "pong"
    );
}

#[test]
fn ten_megabyte_binaries_cross_each_way_intact() {
    let (_r, mut e) = setup("big");
    ok(&mut e, "Big = crypto:strong_rand_bytes(10000000), ok");
    // Erlang -> Rust -> Erlang in one call (Erlang fragments what it sends;
    // so does the Rust side).
    assert_eq!(
        e.eval("gen_server:call({echo, N}, Big, 30000) =:= Big"),
        "true"
    );
    // Rust -> Erlang as a plain message.
    ok(&mut e, "{echo, N} ! {self(), Big}, ok");
    assert_eq!(
        e.eval("receive {echo, B2} -> B2 =:= Big after 30000 -> timeout end"),
        "true"
    );
}

#[test]
fn a_hundred_thousand_messages_arrive_in_order() {
    let (_r, mut e) = setup("order");
    ok(
        &mut e,
        "[{echo, N} ! {self(), I} || I <- lists:seq(1, 100000)], ok",
    );
    assert_eq!(
        e.eval_timeout(
            "Check = fun C(I) when I > 100000 -> in_order; C(I) -> receive {echo, I} -> C(I + 1); {echo, J} -> {out_of_order, I, J} after 10000 -> {timeout, I} end end, Check(1)",
            Duration::from_secs(60)
        ),
        "in_order"
    );
}

#[test]
fn a_wrong_cookie_is_refused_and_the_node_stays_up() {
    let port = free_port();
    let r = InteropNode::start("r_cookie", "right", port);
    let mut bad = Erl::start("e_bad", "wrong", port, &[]);
    assert_eq!(bad.eval(&format!("net_adm:ping('{}')", r.name)), "pang");
    // Logged with no configuration, naming the node refused and why, as a
    // stock Erlang node reports it.
    let (logged, log) = r.wait_log(
        &["refused a connection from", &bad.name, "cookie"],
        Duration::from_secs(10),
    );
    assert!(logged, "no log line names the refused node:\n{log}");
    assert!(log.contains("=WARNING REPORT===="), "{log}");
    let mut good = Erl::start("e_good", "right", port, &[]);
    assert_eq!(good.eval(&format!("net_adm:ping('{}')", r.name)), "pong");
    assert_eq!(bad.eval(&format!("net_adm:ping('{}')", r.name)), "pang");
}

#[test]
fn global_and_pg_traffic_from_erlang_is_answered() {
    let (r, mut e) = setup("global");
    // global works on the Erlang side with the ergo node connected.
    assert_eq!(e.eval("global:register_name(shell, self())"), "yes");
    assert_eq!(e.eval("global:whereis_name(shell) =:= self()"), "true");
    assert_eq!(
        e.eval("lists:member(shell, global:registered_names())"),
        "true"
    );
    // pg: a scope on the Erlang node sends `{discover, Self}` to `pg` on
    // every connected node; the ergo node's `pg` answers with a `sync` of
    // no groups, and the Erlang scope takes that process on as its peer
    // (it monitors it and keeps it among its remote scopes).
    assert_eq!(
        e.eval(&format!("lists:member('{}', nodes())", r.name)),
        "true"
    );
    ok(&mut e, "{ok, Pg} = pg:start_link(), ok");
    assert_eq!(
        e.eval(
            "Peers = fun L(0) -> none; L(K) -> \
               case [P || {process, P} <- element(2, process_info(Pg, monitors)), node(P) =:= N] of \
                 [] -> timer:sleep(20), L(K - 1); Ps -> Ps end end, \
             [Peer] = Peers(250), node(Peer)"
        ),
        format!("'{}'", r.name),
        "the ergo node's pg answered the discovery"
    );
    // The peer is a remote scope of the Erlang `pg`, with no groups.
    assert_eq!(
        e.eval(
            "[{Peer, G} || M <- tuple_to_list(sys:get_state(Pg)), is_map(M), \
               {Peer2, {_, G}} <- maps:to_list(M), Peer2 =:= Peer] =:= [{Peer, #{}}]"
        ),
        "true"
    );
    // Joining and listing work with the ergo node in the scope.
    ok(&mut e, "ok = pg:join(g, self()), ok");
    assert_eq!(e.eval("pg:get_members(g) =:= [self()]"), "true");
    assert_eq!(e.eval("pg:which_groups()"), "[g]");
}

#[test]
fn elixir_calls_and_casts_a_gen_server_on_the_example_node() {
    let port = free_port();
    let r = InteropNode::start("r_elixir", "cookie", port);
    let script = format!(
        r#"
        node = :"{node}"
        true = Node.connect(node)
        5 = GenServer.call({{:counter, node}}, {{:add, 5}})
        :ok = GenServer.cast({{:counter, node}}, :reset)
        0 = GenServer.call({{:counter, node}}, :get)
        "hi" = GenServer.call({{:echo, node}}, "hi")
        3 = :rpc.call(node, :interop, :add, [1, 2])
        true = node in Node.list()
        IO.puts("elixir ok")
        "#,
        node = r.name
    );
    let out = Command::new("elixir")
        .env("ERL_EPMD_PORT", port.to_string())
        .args([
            "--name",
            "ex@127.0.0.1",
            "--cookie",
            "cookie",
            "-e",
            &script,
        ])
        .output()
        .expect("elixir runs (the test command installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("elixir ok"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn elixir_reaches_rust_servers_by_global_name_and_rust_reaches_elixirs() {
    let port = free_port();
    let r = InteropNode::start("r_exglobal", "cookie", port);
    // `GenServer` names of the form `{:global, Name}` go through `global`
    // on the Elixir side: they must see the Rust node's names, and the Rust
    // node theirs.
    let script = format!(
        r#"
        defmodule Keeper do
          use GenServer
          def init(x), do: {{:ok, x}}
          def handle_call(:get, _from, x), do: {{:reply, x, x}}
        end
        node = :"{node}"
        true = Node.connect(node)
        :ok = :global.sync()
        7 = GenServer.call({{:global, {{:counter, node}}}}, {{:add, 7}})
        {{:ok, keeper}} = GenServer.start_link(Keeper, 41, name: {{:global, :keeper}})
        ^keeper = :rpc.call(node, :global, :whereis_name, [:keeper])
        {{:ok, w}} = GenServer.call({{:lab, node}}, {{:spawn, self()}})
        send(w, {{:call, {{:global, :keeper}}, :get}})
        receive do
          {{:forward, ^w, {{:reply, 41}}}} -> :ok
        after
          5000 -> raise "the Rust worker did not reach the keeper"
        end
        send(w, {{:global_register, :rust_worker}})
        receive do
          {{:forward, ^w, {{:global_registered, :rust_worker, :yes}}}} -> :ok
        after
          5000 -> raise "no global_registered"
        end
        ^w = :global.whereis_name(:rust_worker)
        {{:error, {{:already_started, ^keeper}}}} = GenServer.start(Keeper, 0, name: {{:global, :keeper}})
        IO.puts("elixir global ok")
        "#,
        node = r.name
    );
    let out = Command::new("elixir")
        .env("ERL_EPMD_PORT", port.to_string())
        .args([
            "--name",
            "exg@127.0.0.1",
            "--cookie",
            "cookie",
            "-e",
            &script,
        ])
        .output()
        .expect("elixir runs (the test command installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("elixir global ok"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn erlang_sees_a_frozen_rust_node_down_within_net_ticktime_and_it_reconnects_when_thawed() {
    // As between Erlang nodes: a peer that stops answering is declared
    // down after net_ticktime (2 s here, on both sides), its links and
    // monitors fire `noconnection`; once it runs again it connects anew.
    let port = free_port();
    let r = InteropNode::start_with("r_frozen", "cookie", port, &["--net-ticktime", "2"]);
    let mut e = Erl::start(
        "e_frozen",
        "cookie",
        port,
        &["-kernel", "net_ticktime", "2"],
    );
    ok(
        &mut e,
        &format!(
            "N = '{}', pong = net_adm:ping(N), ok = net_kernel:monitor_nodes(true), \
             {{ok, W}} = gen_server:call({{lab, N}}, {{spawn, self()}}), \
             MRef = monitor(process, W), ok",
            r.name
        ),
    );
    r.signal("STOP");
    let started = std::time::Instant::now();
    assert_eq!(
        e.eval("receive {nodedown, N} -> down after 15000 -> timeout end"),
        "down"
    );
    let after = started.elapsed();
    assert_eq!(
        e.eval("receive {'DOWN', MRef, process, W, R} -> R after 5000 -> timeout end"),
        "noconnection"
    );
    r.signal("CONT");
    // Declared down within about net_ticktime (Erlang allows up to 1.25x).
    assert!(after < Duration::from_secs(5), "nodedown after {after:?}");
    // Thawed: it reconnects cleanly and serves again.
    assert_eq!(
        e.eval(
            "(fun T(0) -> pang; T(K) -> case net_adm:ping(N) of pong -> pong; \
             pang -> timer:sleep(100), T(K - 1) end end)(50)"
        ),
        "pong"
    );
    assert_eq!(e.eval("gen_server:call({echo, N}, back)"), "back");
    assert_eq!(
        e.eval("receive {nodeup, N} -> up after 5000 -> timeout end"),
        "up"
    );
    // Killed: Erlang hears at once (the socket closes).
    let mut r = r;
    r.kill();
    let killed = std::time::Instant::now();
    assert_eq!(
        e.eval("receive {nodedown, N} -> down after 5000 -> timeout end"),
        "down"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn pg_groups_are_shared_with_erlang_both_ways_in_scopes_with_joins_leaves_exits_and_node_loss() {
    let (r, mut e) = setup("pg");
    // Erlang's default scope is not started by default; Phoenix.PubSub and
    // friends start their own scopes, as `my_scope` here.
    ok(
        &mut e,
        "{ok, _} = pg:start_link(), {ok, _} = pg:start_link(my_scope), ok",
    );
    let poll = |e: &mut Erl, expr: &str, want: &str| {
        let got = e.eval(&format!(
            "(fun P(0) -> {expr}; P(K) -> case {expr} of {want} -> {want}; _ -> timer:sleep(20), P(K - 1) end end)(250)"
        ));
        assert_eq!(got, want, "{expr}");
    };
    // A Rust process joins: Erlang sees it, in both scopes.
    ok(
        &mut e,
        "W ! {pg_join, pg, g_rust}, W ! {pg_join, my_scope, {g, 1}}, ok",
    );
    assert_eq!(
        e.eval("receive {forward, W, {pg_joined, g_rust, J1}} -> J1 after 5000 -> timeout end"),
        "true"
    );
    assert_eq!(
        e.eval("receive {forward, W, {pg_joined, {g, 1}, J2}} -> J2 after 5000 -> timeout end"),
        "true"
    );
    poll(&mut e, "pg:get_members(g_rust) =:= [W]", "true");
    poll(&mut e, "pg:get_members(my_scope, {g, 1}) =:= [W]", "true");
    assert_eq!(e.eval("lists:member(g_rust, pg:which_groups())"), "true");
    // An Erlang process joins: the Rust node sees it.
    ok(&mut e, "Me = self(), ok = pg:join(g_erl, [Me, Me]), ok");
    ok(&mut e, "W ! {pg_members, pg, g_erl}, ok");
    let members = e.eval(
        "(fun P(0) -> none; P(K) -> W ! {pg_members, pg, g_erl}, \
         receive {forward, W, {pg_members, g_erl, [_, _] = Ms}} -> Ms =:= [Me, Me]; \
         {forward, W, {pg_members, g_erl, _}} -> timer:sleep(20), P(K - 1) \
         after 2000 -> timeout end end)(100)",
    );
    assert_eq!(members, "true", "the Rust node sees both joins");
    // Leaves, both ways.
    ok(&mut e, "ok = pg:leave(g_erl, Me), ok");
    assert_eq!(
        e.eval(
            "(fun P(0) -> none; P(K) -> W ! {pg_members, pg, g_erl}, \
             receive {forward, W, {pg_members, g_erl, [Me]}} -> one; \
             {forward, W, {pg_members, g_erl, _}} -> timer:sleep(20), P(K - 1) \
             after 2000 -> timeout end end)(100)"
        ),
        "one"
    );
    ok(&mut e, "W ! {pg_leave, pg, g_rust}, ok");
    poll(&mut e, "pg:get_members(g_rust)", "[]");
    // A member that ends leaves its groups.
    ok(
        &mut e,
        "{ok, W2} = gen_server:call({lab, N}, {spawn, self()}), W2 ! {pg_join, pg, g_short}, ok",
    );
    poll(&mut e, "pg:get_members(g_short) =:= [W2]", "true");
    ok(&mut e, "W2 ! {exit, normal}, ok");
    poll(&mut e, "pg:get_members(g_short)", "[]");
    // The Rust node lost: its members are dropped from Erlang's view.
    poll(&mut e, "pg:get_members(my_scope, {g, 1}) =:= [W]", "true");
    drop(r);
    poll(&mut e, "pg:get_members(my_scope, {g, 1})", "[]");
}

#[test]
fn an_erlang_node_lost_drops_its_pg_members_from_the_rust_view() {
    let (_r, mut e) = setup("pgloss");
    let port_of = |e: &mut Erl| e.eval("list_to_integer(os:getenv(\"ERL_EPMD_PORT\"))");
    let port: u16 = port_of(&mut e).parse().unwrap();
    let mut e2 = Erl::start("e_pgloss2", "cookie", port, &[]);
    ok(&mut e2, "{ok, _} = pg:start_link(), ok");
    assert_eq!(e2.eval(&format!("net_adm:ping('{}')", _r.name)), "pong");
    ok(
        &mut e2,
        "P = spawn(fun() -> receive after infinity -> ok end end), ok = pg:join(far, P), ok",
    );
    let seen = |e: &mut Erl, want: usize| {
        e.eval(&format!(
            "(fun P(0) -> none; P(K) -> W ! {{pg_members, pg, far}}, \
             receive {{forward, W, {{pg_members, far, Ms}}}} when length(Ms) =:= {want} -> seen; \
             {{forward, W, {{pg_members, far, _}}}} -> timer:sleep(20), P(K - 1) \
             after 2000 -> timeout end end)(150)"
        ))
    };
    assert_eq!(seen(&mut e, 1), "seen");
    e2.kill();
    assert_eq!(seen(&mut e, 0), "seen", "the lost node's member is dropped");
}

#[test]
fn erlang_looks_at_the_rust_node_over_rpc_and_erpc_and_sees_its_real_state() {
    let (r, mut e) = setup("introspect");
    let call = |e: &mut Erl, f: &str| e.eval(&format!("rpc:call(N, {f})"));
    assert_eq!(call(&mut e, "erlang, node, []"), format!("'{}'", r.name));
    assert_eq!(
        e.eval("lists:member(node(), rpc:call(N, erlang, nodes, []))"),
        "true"
    );
    assert_eq!(
        e.eval("lists:member(N, rpc:call(N, erlang, nodes, [[this, visible]]))"),
        "true"
    );
    // 100 more processes: processes/0 grows by 100.
    ok(
        &mut e,
        "Before = length(rpc:call(N, erlang, processes, [])), \
         Ws = [element(2, gen_server:call({lab, N}, {spawn, self()})) || _ <- lists:seq(1, 100)], \
         After = length(erpc:call(N, erlang, processes, [])), ok",
    );
    assert_eq!(e.eval("After - Before"), "100");
    assert_eq!(
        e.eval("rpc:call(N, erlang, system_info, [process_count]) =:= After"),
        "true"
    );
    // Registered names.
    assert_eq!(
        e.eval(
            "Reg = rpc:call(N, erlang, registered, []), \
             [lists:member(X, Reg) || X <- [echo, counter, lab, rex, net_kernel, pg]]"
        ),
        "[true,true,true,true,true,true]"
    );
    assert_eq!(
        e.eval("Echo = rpc:call(N, erlang, whereis, [echo]), {is_pid(Echo), node(Echo) =:= N}"),
        "{true,true}"
    );
    assert_eq!(call(&mut e, "erlang, whereis, [nobody_here]"), "undefined");
    assert_eq!(call(&mut e, "erlang, is_process_alive, [Echo]"), "true");
    // A mailbox holding 5 messages says 5; links and the process's name.
    ok(
        &mut e,
        "W ! {sleep, 3000}, [W ! {note, I} || I <- lists:seq(1, 5)], timer:sleep(200), ok",
    );
    assert_eq!(
        call(&mut e, "erlang, process_info, [W, message_queue_len]"),
        "{message_queue_len,5}"
    );
    assert_eq!(
        e.eval(
            "Info = rpc:call(N, erlang, process_info, [Echo]), \
             {proplists:get_value(registered_name, Info), proplists:get_value(trap_exit, Info), \
              is_list(proplists:get_value(links, Info)), proplists:get_value(dictionary, Info)}"
        ),
        "{echo,false,true,[]}"
    );
    assert_eq!(
        call(
            &mut e,
            "erlang, process_info, [lists:nth(2, Ws), [registered_name, status]]"
        ),
        "[{registered_name,[]},{status,waiting}]"
    );
    // A process that ended.
    ok(
        &mut e,
        "[W1 | _] = Ws, W1 ! {exit, normal}, timer:sleep(200), ok",
    );
    assert_eq!(call(&mut e, "erlang, process_info, [W1]"), "undefined");
    assert_eq!(call(&mut e, "erlang, is_process_alive, [W1]"), "false");
    // The system.
    assert_eq!(call(&mut e, "erlang, system_info, [otp_release]"), "\"25\"");
    assert_eq!(call(&mut e, "erlang, system_info, [wordsize]"), "8");
    assert_eq!(
        e.eval("is_integer(rpc:call(N, erlang, system_info, [schedulers])) andalso is_list(rpc:call(N, erlang, system_info, [system_architecture]))"),
        "true"
    );
    assert_eq!(
        e.eval(
            "Mem = rpc:call(N, erlang, memory, []), \
             {proplists:get_value(total, Mem) > 0, is_integer(rpc:call(N, erlang, memory, [processes]))}"
        ),
        "{true,true}"
    );
    assert_eq!(
        e.eval(
            "{{input, In}, {output, Out}} = rpc:call(N, erlang, statistics, [io]), \
             {{R1, _}, {W2, _}, {Red, _}} = {rpc:call(N, erlang, statistics, [runtime]), \
               rpc:call(N, erlang, statistics, [wall_clock]), rpc:call(N, erlang, statistics, [reductions])}, \
             {In > 0, Out > 0, is_integer(R1), W2 >= 0, Red > 0, is_integer(rpc:call(N, erlang, statistics, [run_queue]))}"
        ),
        "{true,true,true,true,true,true}"
    );
    assert_eq!(
        call(&mut e, "application, which_applications, []"),
        "[{interop,\"the interop node's servers\",\"1.0.0\"}]"
    );
    assert_eq!(
        call(&mut e, "code, ensure_loaded, [erlang]"),
        "{module,erlang}"
    );
    assert_eq!(
        call(&mut e, "code, ensure_loaded, [no_such_module]"),
        "{error,nofile}"
    );
    assert_eq!(
        call(&mut e, "erlang, function_exported, [erlang, processes, 0]"),
        "true"
    );
    assert_eq!(
        call(&mut e, "erlang, function_exported, [interop, add, 2]"),
        "true"
    );
    assert_eq!(call(&mut e, "net_kernel, get_net_ticktime, []"), "60");
    // What is not answered stays undef.
    assert_eq!(
        e.eval("element(1, element(2, rpc:call(N, erlang, no_such_function, [])))"),
        "'EXIT'"
    );
}

#[test]
fn sys_reads_a_gen_servers_shown_state_and_process_info_names_its_behaviour() {
    let (_r, mut e) = setup("sys");
    assert_eq!(e.eval("gen_server:call({counter, N}, {add, 7})"), "7");
    // `counter` shows its state through `#[format_status]`.
    assert_eq!(e.eval("sys:get_state({counter, N})"), "{counter,7}");
    assert_eq!(
        e.eval(
            "{status, Pid, {module, gen_server}, [[], running, Parent, [], Misc]} = \
               sys:get_status({counter, N}), \
             {node(Pid) =:= N, is_pid(Parent), \
              [S || {data, D} <- Misc, {\"State\", S} <- D]}"
        ),
        "{true,true,[{counter,7}]}"
    );
    // `echo` keeps its state private, and says so.
    assert_eq!(e.eval("sys:get_state({echo, N})"), "state_not_shown");
    // A system request the server does not know is refused, and it lives
    // on.
    assert_eq!(
        e.eval("gen:call({counter, N}, system, no_such_request)"),
        "{ok,{error,{unknown_system_msg,no_such_request}}}"
    );
    assert_eq!(e.eval("gen_server:call({counter, N}, get)"), "7");
    // process_info names the behaviour and the Rust type running it.
    assert_eq!(
        e.eval(
            "C = rpc:call(N, erlang, whereis, [counter]), \
             [{current_function, CF}, {initial_call, {M, init, 1}}] = \
               rpc:call(N, erlang, process_info, [C, [current_function, initial_call]]), \
             {CF, lists:suffix(\"Counter\", atom_to_list(M))}"
        ),
        "{{gen_server,loop,1},true}"
    );
}

#[test]
fn observers_backend_calls_get_the_answers_its_system_and_processes_tabs_read() {
    let (_r, mut e) = setup("observer");
    // The System tab: observer_backend:sys_info/0 over rpc.
    assert_eq!(
        e.eval(
            "Sys = rpc:call(N, observer_backend, sys_info, []), \
             [lists:keymember(K, 1, Sys) || K <- [uptime, run_queue, io_input, io_output, \
               logical_processors, schedulers, schedulers_online, otp_release, version, \
               system_architecture, wordsize_internal, process_count, process_limit, \
               atom_count, atom_limit, total, processes, atom, binary, ets]]"
        ),
        format!("[{}]", ["true"; 20].join(","))
    );
    assert_eq!(
        e.eval(
            "{proplists:get_value(otp_release, Sys), \
              proplists:get_value(process_count, Sys) =:= length(rpc:call(N, erlang, processes, [])), \
              proplists:get_value(total, Sys) > 0, proplists:get_value(io_input, Sys) > 0}"
        ),
        "{\"25\",true,true,true}"
    );
    // The Processes tab: procs_info/1 sends its records to the collector.
    assert_eq!(
        e.eval(
            "ok = rpc:call(N, observer_backend, procs_info, [self()]), \
             receive {procs_info, _, Procs} -> \
               Names = [Name || {etop_proc_info, _, _, _, Name, _, _, _} <- Procs], \
               {length(Procs) =:= length(rpc:call(N, erlang, processes, [])), \
                lists:member(echo, Names), \
                lists:all(fun(P) -> tuple_size(P) =:= 8 andalso is_pid(element(2, P)) end, Procs)} \
             after 5000 -> timeout end"
        ),
        "{true,true,true}"
    );
    // As the tab really asks: spawned on the node, the reports coming from
    // the spawned process.
    assert_eq!(
        e.eval(
            "Backend = spawn_link(N, observer_backend, procs_info, [self()]), \
             receive {procs_info, Backend, Procs2} -> length(Procs2) > 10 after 5000 -> timeout end"
        ),
        "true"
    );
    // etop's collection, and the empty port and table lists.
    assert_eq!(
        e.eval(
            "ok = rpc:call(N, observer_backend, etop_collect, [self()]), \
             receive {_, {etop_info, {_, _, _}, NProcs, _, _, RQ, _, Memi, PInfo}} -> \
               {NProcs =:= length(PInfo), is_integer(RQ), lists:keymember(total, 1, Memi)} \
             after 5000 -> timeout end"
        ),
        "{true,true,true}"
    );
    assert_eq!(
        e.eval(
            "{rpc:call(N, observer_backend, get_port_list, []), \
              rpc:call(N, observer_backend, get_table_list, [ets, [{sys_hidden, true}, {unread_hidden, true}]])}"
        ),
        "{[],[]}"
    );
    // The Applications tab: appmon_info started over rpc, then its running
    // applications and one supervision tree, delivered to the client.
    assert_eq!(
        e.eval(
            "{ok, AM} = rpc:call(N, appmon_info, start_link2, [self(), self(), []]), \
             gen_server:cast(AM, {self(), app_ctrl, N, true, []}), \
             receive {delivery, AM, app_ctrl, N, Apps} -> \
               [{Name, Vsn, is_pid(Top)} || {Top, Name, {_, _, Vsn}} <- Apps] \
             after 5000 -> timeout end"
        ),
        "[{interop,\"1.0.0\",true}]"
    );
    assert_eq!(
        e.eval(
            "gen_server:cast(AM, {self(), app, interop, true, []}), \
             receive {delivery, AM, app, interop, {Root, P2N, Links, []}} -> \
               {is_list(Root), length(P2N), lists:sort([C || {P, C} <- Links, P =:= Root])} \
             after 5000 -> timeout end"
        ),
        "{true,3,[\"app_worker_1\",\"app_worker_2\"]}"
    );
    // The Load Charts tab spawns fetch_stats on the node, linked, and
    // reads a report per period until it tells the process to stop.
    assert_eq!(
        e.eval(
            "Stats = spawn_link(N, observer_backend, fetch_stats, [self(), 100]), \
             Rs = [receive {stats, 1, Sched, {{input, I}, {output, O}}, Mem} -> \
                     {is_list(Sched) andalso Sched =/= [] andalso \
                        lists:all(fun({_, A, T}) -> A =< T end, Sched), \
                      I > 0, O > 0, lists:keymember(total, 1, Mem)} \
                   after 3000 -> timeout end || _ <- [1, 2, 3]], \
             MS = monitor(process, Stats), Stats ! stop, lists:usort(Rs)"
        ),
        "[{true,true,true,true}]"
    );
    assert_eq!(
        e.eval("receive {'DOWN', MS, process, Stats, R} -> R after 3000 -> timeout end"),
        "normal"
    );
}
