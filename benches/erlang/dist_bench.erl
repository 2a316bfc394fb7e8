%% The Erlang side of benches/dist_vs_erlang.sh: gen_server calls between two
%% Erlang nodes on 127.0.0.1, and from an Erlang node to the Rust
%% interop_node example, named as the dist_side binary expects them.
%%
%% Node b runs the servers: `echo` and `echo_0` ... `echo_119`, gen_servers
%% that reply to every call with the request:
%%
%%   erl -name b@127.0.0.1 -setcookie C -noshell -run dist_bench server
%%
%% Node a runs the clients and prints the figures, then halts:
%%
%%   erl -name a@127.0.0.1 -setcookie C -noshell \
%%       -run dist_bench client SECS b@127.0.0.1 [r@127.0.0.1]
%%
%% where r (optional) is a node whose registered `echo` also replies with
%% the request (the Rust interop_node). Figures:
%% - erlang_call_P (ns/op): sequential gen_server:call({echo, B}, Payload)
%%   for P = int (42), str (<<"hello world">>), pid ({self(), 1}) and
%%   bin1mb (a 1,000,000-byte binary); erlang_bin1mb_mbps: the last as
%%   payload MB/s (one payload sent per round trip);
%% - erlang_par120_rate (calls/s): 120 clients on a, each calling its own
%%   echo_I on b with 42;
%% - erlang_client_to_rust_rate and erlang_client_to_erlang_rate (calls/s):
%%   this node calling {echo, R} and {echo, B} with 42, alternating in
%%   rounds, so that both see the same conditions;
%%   erlang_client_to_rust_bin1mb_rate and erlang_client_to_erlang_bin1mb_rate
%%   the same with the 1,000,000-byte binary (sent in fragments, echoed
%%   back whole); erlang_client120_to_rust_rate and
%%   erlang_client120_to_erlang_rate the same with 120 client processes on
%%   this node calling the one echo at once (calls/s of all of them);
%% - erlang_handshake_us (us): connecting to b anew (after
%%   erlang:disconnect_node/1) until the first call's reply, the median of
%%   ?HANDSHAKES rounds.
%%
%% Output: "name value unit" lines; lines starting with "#" are context.
-module(dist_bench).
-behaviour(gen_server).

-export([server/0, client/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
-import(bench_util, [now_ns/0, run_for/2, out/3]).

-define(PAIRS, 120).
-define(BIG, 1000000).
-define(ROUNDS, 4).
-define(WARM, 0.2).
-define(WAIT_MS, 30000).
-define(HANDSHAKES, 21).

%% ------------------------------------------------------ the gen_server
init([]) -> {ok, nostate}.

handle_call(Req, _From, S) -> {reply, Req, S}.

handle_cast(_Msg, S) -> {noreply, S}.

handle_info(_Msg, S) -> {noreply, S}.

pair_name(I) -> list_to_atom("echo_" ++ integer_to_list(I)).

%% ------------------------------------------------------ node b
server() ->
    Names = [echo | [pair_name(I) || I <- lists:seq(0, ?PAIRS - 1)]],
    [{ok, _} = gen_server:start({local, N}, ?MODULE, [], []) || N <- Names],
    receive after infinity -> ok end.

%% ------------------------------------------------------ node a
client([SecsStr, BStr | Rest]) ->
    Secs = to_num(SecsStr),
    B = list_to_atom(BStr),
    R = case Rest of [RStr] -> list_to_atom(RStr); [] -> none end,
    Rc = try run(Secs, B, R), 0
         catch C:E:St -> io:format("# ERROR ~p:~p~n# ~p~n", [C, E, St]), 1
         end,
    halt(Rc).

to_num(S) ->
    try list_to_float(S) catch _:_ -> float(list_to_integer(S)) end.

run(Secs, B, R) ->
    io:format("# otp_release ~s erts ~s schedulers ~p~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               erlang:system_info(schedulers_online)]),
    Deadline = now_ns() + ?WAIT_MS * 1000000,
    wait_for({echo, B}, Deadline),
    wait_for({pair_name(?PAIRS - 1), B}, Deadline),
    R =/= none andalso wait_for({echo, R}, Deadline),
    io:format("# ~p connected to ~p~n", [node(), nodes()]),
    call_figures(Secs, B),
    parallel_figure(Secs, B),
    R =/= none andalso interop_figure(Secs, B, R),
    handshake_figure(B),
    ok.

%% Calls Server until it answers (the node is up and the server started),
%% or fails once Deadline has passed.
wait_for(Server, Deadline) ->
    try gen_server:call(Server, ping, 1000) of
        ping -> ok
    catch exit:_ ->
            case now_ns() > Deadline of
                true -> error({no_answer_from, Server});
                false -> timer:sleep(50), wait_for(Server, Deadline)
            end
    end.

%% ------------------------------------------------------ helpers
%% K sequential calls of Server with Payload. The reply is not compared
%% (for the 1 MB binary that would add a 1 MB compare to every call);
%% call_figures/2 checks one reply first.
calls(0, _, _) -> ok;
calls(K, Server, Payload) ->
    _ = gen_server:call(Server, Payload),
    calls(K - 1, Server, Payload).

payloads() ->
    [{"int", 42},
     {"str", <<"hello world">>},
     {"pid", {self(), 1}},
     {"bin1mb", rand:bytes(?BIG)}].

%% ------------------------------------------------------ sequential calls
call_figures(Secs, B) ->
    S = {echo, B},
    lists:foreach(
      fun({Name, P}) ->
              P = gen_server:call(S, P),
              F = fun(K) -> calls(K, S, P) end,
              _ = run_for(F, ?WARM),
              {Ops, Ns} = run_for(F, Secs),
              PerOp = Ns / Ops,
              out("erlang_call_" ++ Name, PerOp, "ns/op"),
              Name =:= "bin1mb" andalso
                  out("erlang_bin1mb_mbps", ?BIG / (PerOp * 1.0e-9) / 1.0e6, "MB/s")
      end, payloads()).

%% ------------------------------------------------- 120 parallel pairs
%% Each client warms up, reports ready, and on go calls until the deadline;
%% the rate is all calls over the time until the last client stopped.
parallel_figure(Secs, B) ->
    Parent = self(),
    WarmUntil = now_ns() + round(?WARM * 1.0e9),
    Clients = [spawn_link(fun() -> pair_client(Parent, {pair_name(I), B}, WarmUntil) end)
               || I <- lists:seq(0, ?PAIRS - 1)],
    [receive {ready, C} -> ok end || C <- Clients],
    T0 = now_ns(),
    Deadline = T0 + round(Secs * 1.0e9),
    [C ! {go, Deadline} || C <- Clients],
    Results = [receive {done, C, N, T} -> {N, T} end || C <- Clients],
    Total = lists:sum([N || {N, _} <- Results]),
    Wall = lists:max([T || {_, T} <- Results]) - T0,
    out("erlang_par120_rate", Total / (Wall / 1.0e9), "calls/s"),
    ok.

pair_client(Parent, S, WarmUntil) ->
    warm(S, WarmUntil),
    Parent ! {ready, self()},
    receive {go, Deadline} -> pair_loop(Parent, S, Deadline, 0) end.

warm(S, Until) ->
    calls(10, S, 42),
    case now_ns() >= Until of
        true -> ok;
        false -> warm(S, Until)
    end.

pair_loop(Parent, S, Deadline, N) ->
    calls(10, S, 42),
    T = now_ns(),
    if
        T >= Deadline -> Parent ! {done, self(), N + 10, T};
        true -> pair_loop(Parent, S, Deadline, N + 10)
    end.

%% ------------------------------------------------- Erlang client, two servers
%% The same client calls the Rust echo on R and the Erlang echo on B, in
%% ?ROUNDS alternating rounds of Secs / ?ROUNDS each, so that both see the
%% same conditions: with 42, with the 1 MB binary, and from ?PAIRS client
%% processes at once (with 42).
interop_figure(Secs, B, R) ->
    SR = {echo, R},
    SB = {echo, B},
    Big = rand:bytes(?BIG),
    42 = gen_server:call(SR, 42),
    Big = gen_server:call(SR, Big),
    Big = gen_server:call(SB, Big),
    Seq = fun(P) -> fun(S, Slice) -> run_for(fun(K) -> calls(K, S, P) end, Slice) end end,
    alternate("erlang_client_to", Seq(42), Secs, SR, SB),
    alternate("erlang_client_to_bin1mb", Seq(Big), Secs, SR, SB),
    Par = fun(S, Slice) -> clients_at_once(S, Slice) end,
    alternate("erlang_client120_to", Par, Secs, SR, SB),
    ok.

%% Runs Fig(Server, Slice) -> {Ops, Ns} on SR and SB in turn, warmed first,
%% and prints Prefix_rust_rate and Prefix_erlang_rate (the 1 MB figure's
%% names put the payload after the side: erlang_client_to_rust_bin1mb_rate).
alternate(Prefix, Fig, Secs, SR, SB) ->
    _ = Fig(SR, ?WARM),
    _ = Fig(SB, ?WARM),
    Slice = Secs / ?ROUNDS,
    {OR, TR, OB, TB} =
        lists:foldl(fun(_, {Or, Tr, Ob, Tb}) ->
                            {O1, T1} = Fig(SR, Slice),
                            {O2, T2} = Fig(SB, Slice),
                            {Or + O1, Tr + T1, Ob + O2, Tb + T2}
                    end, {0, 0, 0, 0}, lists:seq(1, ?ROUNDS)),
    {Rust, Erl} = case Prefix of
                      "erlang_client_to_bin1mb" ->
                          {"erlang_client_to_rust_bin1mb_rate",
                           "erlang_client_to_erlang_bin1mb_rate"};
                      _ -> {Prefix ++ "_rust_rate", Prefix ++ "_erlang_rate"}
                  end,
    out(Rust, OR / (TR / 1.0e9), "calls/s"),
    out(Erl, OB / (TB / 1.0e9), "calls/s"),
    ok.

%% ?PAIRS processes calling Server with 42 for Secs, all at once: {all
%% their calls, the time until the last of them stopped}.
clients_at_once(Server, Secs) ->
    Parent = self(),
    T0 = now_ns(),
    Deadline = T0 + round(Secs * 1.0e9),
    Clients = [spawn_link(fun() -> pair_loop(Parent, Server, Deadline, 0) end)
               || _ <- lists:seq(1, ?PAIRS)],
    Results = [receive {done, C, N, T} -> {N, T} end || C <- Clients],
    {lists:sum([N || {N, _} <- Results]), lists:max([T || {_, T} <- Results]) - T0}.

%% ------------------------------------------------- connection set-up
%% Disconnects from B, then times a call that has to connect first.
handshake_figure(B) ->
    Times = [begin
                 true = erlang:disconnect_node(B),
                 wait_gone(B),
                 T0 = now_ns(),
                 42 = gen_server:call({echo, B}, 42),
                 (now_ns() - T0) / 1000
             end || _ <- lists:seq(1, ?HANDSHAKES)],
    out("erlang_handshake_us", lists:nth(?HANDSHAKES div 2 + 1, lists:sort(Times)), "us"),
    ok.

wait_gone(B) ->
    case lists:member(B, nodes()) of
        true -> timer:sleep(1), wait_gone(B);
        false -> ok
    end.
