%% The Erlang side of benches/process_vs_erlang.sh: the process runtime
%% figures of one node (no distribution), named as the process_side binary
%% expects them. The methods are those of the shared Erlang anchors
%% (shared/anchors/erlang/bench.erl); the workload is the one ergo's
%% figures use: a gen_server that answers an integer N with N + 1 and sums
%% the casts {add, N}.
%%
%%   erlc process_bench.erl && erl +P 2000000 -noshell -run process_bench main SECS
%%
%% Output: "name value unit" lines; lines starting with "#" are context.
%% Env: PROCESS_BENCH_ONLY=call,parallel,send,cast,spawn (default: all),
%%      SPAWN_N (default 1000000), PREFAULT_CMD (a command run before the
%%      spawn figure to touch and free 2 GiB; see prefault/0), NOPREFAULT=1.
-module(process_bench).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-import(bench_util, [now_ns/0, run_for/2, out/3]).

-define(SYNC_EVERY, 100000).
-define(PAIRS, 120).

main([SecsStr]) ->
    Secs = to_num(SecsStr),
    Only = case os:getenv("PROCESS_BENCH_ONLY") of
               false -> all;
               "" -> all;
               S -> string:tokens(S, ",")
           end,
    Rc = try run(Secs, Only), 0
         catch C:R:St -> io:format("# ERROR ~p:~p~n# ~p~n", [C, R, St]), 1
         end,
    halt(Rc).

to_num(S) ->
    try list_to_float(S) catch _:_ -> list_to_integer(S) end.

run(Secs, Only) ->
    context(),
    Want = fun(Tag) -> Only =:= all orelse lists:member(Tag, Only) end,
    Want("call") andalso call_figures(Secs),
    Want("parallel") andalso parallel_figure(Secs),
    Want("send") andalso send_figure(max(1, Secs / 3)),
    Want("cast") andalso cast_figure(Secs),
    SpawnN = case os:getenv("SPAWN_N") of false -> 1000000; N -> list_to_integer(N) end,
    Want("spawn") andalso spawn_figure(spawn_name(SpawnN), SpawnN),
    ok.

spawn_name(1000000) -> "spawn_1M";
spawn_name(N) -> "spawn_" ++ integer_to_list(N).

context() ->
    io:format("# otp_release ~s erts ~s~n",
              [erlang:system_info(otp_release), erlang:system_info(version)]),
    io:format("# schedulers ~p online ~p~n",
              [erlang:system_info(schedulers), erlang:system_info(schedulers_online)]),
    io:format("# process_limit ~p~n", [erlang:system_info(process_limit)]).

%% ------------------------------------------------------------- helpers
%% Warm up for 0.3 s, then time Secs in 10 slices: prints the overall mean
%% and the median slice.
timed_seq(Name, F, Secs) ->
    _ = run_for(F, 0.3),
    Slices = [run_for(F, Secs / 10) || _ <- lists:seq(1, 10)],
    Ops = lists:sum([O || {O, _} <- Slices]),
    Ns = lists:sum([T || {_, T} <- Slices]),
    Sorted = lists:sort([T / O || {O, T} <- Slices]),
    out(Name, Ns / Ops, "ns/op"),
    out(Name ++ "_median_slice", (lists:nth(5, Sorted) + lists:nth(6, Sorted)) / 2, "ns/op").

rss_bytes() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]),
                   binary:match(L, <<"VmRSS:">>) =:= {0, 6}],
    [_, Kb | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kb) * 1024.

%% Before the spawn figure, has 2 GiB touched and freed in another OS
%% process, as the Rust side does before its own (first touch of memory the
%% host took back is slow on this VM). It runs the command in PREFAULT_CMD
%% (process_vs_erlang.sh passes `process_side --prefault`); without one,
%% nothing is prefaulted. Not done inside this VM: its allocators would keep
%% the freed 2 GiB segment resident and reuse it for the process heaps, and
%% the resident-memory figure would read near zero.
prefault() ->
    case {os:getenv("NOPREFAULT"), os:getenv("PREFAULT_CMD")} of
        {false, Cmd} when is_list(Cmd), Cmd =/= "" -> _ = os:cmd(Cmd), true;
        _ -> false
    end.

%% ------------------------------------------------------ the gen_server
init(Count) -> {ok, Count}.

handle_call(N, _From, Count) when is_integer(N) -> {reply, N + 1, Count};
handle_call(count, _From, Count) -> {reply, Count, Count}.

handle_cast({add, N}, Count) -> {noreply, Count + N}.

handle_info(_Msg, Count) -> {noreply, Count}.

start_server() ->
    {ok, S} = gen_server:start(?MODULE, 0, []),
    S.

%% ------------------------------------------------- sequential calls
calls(0, _, _) -> ok;
calls(K, S, N) -> N1 = N + 1, N1 = gen_server:call(S, N), calls(K - 1, S, N).

raw_echo() -> receive {From, M} -> From ! {raw_echo, M}, raw_echo() end.

raw(0, _) -> ok;
raw(K, P) -> P ! {self(), 12345}, receive {raw_echo, _} -> ok end, raw(K - 1, P).

call_figures(Secs) ->
    S = start_server(),
    timed_seq("local_call_int", fun(K) -> calls(K, S, 12345) end, Secs),
    exit(S, kill),
    E = spawn(fun raw_echo/0),
    timed_seq("local_raw_msg_roundtrip", fun(K) -> raw(K, E) end, Secs),
    exit(E, kill),
    ok.

%% ------------------------------------------------- 120 parallel pairs
parallel_figure(Secs) ->
    Servers = [start_server() || _ <- lists:seq(1, ?PAIRS)],
    Parent = self(),
    Clients = [spawn_link(fun() -> pair_client(Parent, S) end) || S <- Servers],
    [receive {ready, C} -> ok end || C <- Clients],
    T0 = now_ns(),
    Deadline = T0 + round(Secs * 1.0e9),
    [C ! {go, Deadline} || C <- Clients],
    Results = [receive {done, C, N, T} -> {N, T} end || C <- Clients],
    Total = lists:sum([N || {N, _} <- Results]),
    Wall = lists:max([T || {_, T} <- Results]) - T0,
    out("parallel120_local_rate", Total / (Wall / 1.0e9), "calls/s"),
    out("parallel120_local_per_op", Wall / Total, "ns/op"),
    [exit(S, kill) || S <- Servers],
    ok.

pair_client(Parent, S) ->
    calls(100, S, 1),
    Parent ! {ready, self()},
    receive {go, Deadline} -> pair_loop(Parent, S, Deadline, 0) end.

pair_loop(Parent, S, Deadline, N) ->
    calls(10, S, 1),
    T = now_ns(),
    if
        T >= Deadline -> Parent ! {done, self(), N + 10, T};
        true -> pair_loop(Parent, S, Deadline, N + 10)
    end.

%% ------------------------------------------------- one-way send
%% A sender streams {seq, I} for Secs, then 'stop'; the counter answers with
%% its count, so every message has arrived when the clock stops.
send_figure(Secs) ->
    Parent = self(),
    Counter = spawn(fun() -> count_seq(Parent, 0) end),
    Sender = spawn_link(fun() ->
                                receive go -> ok end,
                                T0 = now_ns(),
                                N = send_loop(Counter, T0 + round(Secs * 1.0e9), 0),
                                T1 = now_ns(),
                                Counter ! stop,
                                Parent ! {sent, N, T0, T1}
                        end),
    Sender ! go,
    {N, T0, T1} = receive {sent, N0, A, B} -> {N0, A, B} end,
    N = receive {count, Counter, C} -> C end,
    T2 = now_ns(),
    out("send_local_rate", N / ((T2 - T0) / 1.0e9), "msgs/s"),
    out("send_local_sender_side_rate", N / ((T1 - T0) / 1.0e9), "msgs/s"),
    out("send_local_drain_after_sender_done", (T2 - T1) / 1.0e6, "ms"),
    ok.

send_loop(To, Deadline, N) ->
    send_n(1000, To, N),
    case now_ns() >= Deadline of
        true -> N + 1000;
        false -> send_loop(To, Deadline, N + 1000)
    end.

send_n(0, _, _) -> ok;
send_n(K, To, N) -> To ! {seq, N + K}, send_n(K - 1, To, N).

count_seq(Parent, N) ->
    receive
        {seq, _} -> count_seq(Parent, N + 1);
        stop -> Parent ! {count, self(), N}
    end.

%% ------------------------------------------------- gen_server:cast
%% Casts {add, 1} for Secs, with a gen_server:call after every 100,000
%% (it bounds the mailbox, and the last one proves all were handled).
cast_figure(Secs) ->
    S = start_server(),
    T0 = now_ns(),
    Deadline = T0 + round(Secs * 1.0e9),
    N = cast_loop(S, Deadline, 0),
    N = gen_server:call(S, count),
    T1 = now_ns(),
    out("cast_local_rate", N / ((T1 - T0) / 1.0e9), "msgs/s"),
    exit(S, kill),
    ok.

cast_loop(S, Deadline, N) ->
    case now_ns() >= Deadline of
        true -> N;
        false ->
            casts(?SYNC_EVERY, S),
            _ = gen_server:call(S, count),
            cast_loop(S, Deadline, N + ?SYNC_EVERY)
    end.

casts(0, _) -> ok;
casts(K, S) -> gen_server:cast(S, {add, 1}), casts(K - 1, S).

%% ------------------------------------------------- spawn N idle processes
%% N processes spawned from this one, each blocked in receive. The clock
%% stops when the run queues are empty (all have run to their receive).
%% Memory: the erlang:memory(processes) delta per process (the anchors'
%% figure) and the resident-set delta per process (the Rust side's).
idle() -> receive stop -> ok end.

spawn_n(0, Last) -> Last;
spawn_n(K, _) -> spawn_n(K - 1, spawn(fun idle/0)).

runq_empty(Deadline) ->
    case erlang:statistics(total_run_queue_lengths) of
        0 -> ok;
        _ ->
            case now_ns() > Deadline of
                true -> timeout;
                false -> erlang:yield(), runq_empty(Deadline)
            end
    end.

spawn_figure(Name, N) ->
    Prefaulted = prefault(),
    io:format("# ~s: prefaulted 2 GiB first: ~p~n", [Name, Prefaulted]),
    Before = erlang:processes(),
    erlang:garbage_collect(),
    M0 = erlang:memory(processes),
    Rss0 = rss_bytes(),
    T0 = now_ns(),
    Last = spawn_n(N, none),
    T1 = now_ns(),
    Settled = runq_empty(T1 + 60000000000),
    T2 = now_ns(),
    {status, waiting} = process_info(Last, status),
    M1 = erlang:memory(processes),
    Rss1 = rss_bytes(),
    {memory, PMem} = process_info(Last, memory),
    out(Name ++ "_rate", N / ((T2 - T0) / 1.0e9), "procs/s"),
    out(Name ++ "_loop_rate", N / ((T1 - T0) / 1.0e9), "procs/s"),
    out(Name ++ "_until_all_waiting_s", (T2 - T0) / 1.0e9, "s"),
    out(Name ++ "_mem_per_process", (M1 - M0) / N, "bytes"),
    out(Name ++ "_rss_per_process", (Rss1 - Rss0) / N, "bytes"),
    out(Name ++ "_process_info_memory", PMem, "bytes"),
    io:format("# ~s settled=~p process_count=~p~n",
              [Name, Settled, erlang:system_info(process_count)]),
    Keep = maps:from_list([{P, true} || P <- [self() | Before]]),
    T3 = now_ns(),
    Stopped = lists:foldl(fun(P, Acc) ->
                                  case maps:is_key(P, Keep) of
                                      true -> Acc;
                                      false -> P ! stop, Acc + 1
                                  end
                          end, 0, erlang:processes()),
    wait_count(length(Before) + 1, T3 + 60000000000),
    T4 = now_ns(),
    out(Name ++ "_teardown_rate", Stopped / ((T4 - T3) / 1.0e9), "procs/s"),
    ok.

wait_count(Target, Deadline) ->
    case erlang:system_info(process_count) =< Target orelse now_ns() > Deadline of
        true -> ok;
        false -> timer:sleep(5), wait_count(Target, Deadline)
    end.
