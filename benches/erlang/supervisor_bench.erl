%% The Erlang side of benches/supervisor_vs_erlang.sh: OTP's own supervisor
%% doing what ergo's figures do (benches/src/supervision.rs), named as
%% the supervisor_side binary names its own.
%%
%% - restart latency: a one_for_one supervisor with one gen_server child
%%   that sends {started, self()} to the client from init/1; the client
%%   kills the child and waits for its replacement's message. Rounds of
%%   100 restarts, each on a fresh supervisor with intensity 100, period 1.
%% - 10,000 simple_one_for_one children: supervisor:start_link/2, then
%%   10,000 supervisor:start_child/2 calls, one after another; the median
%%   round, and (for context) the median time to stop it again.
%%
%% Logging is off (as on ergo's side), so no SUPERVISOR REPORT is printed.
%%
%%   erlc supervisor_bench.erl && erl -noshell -run supervisor_bench main SECS
%%
%% Output: "name value unit" lines; lines starting with "#" are context.
-module(supervisor_bench).
-behaviour(supervisor).

%% The module is both the supervisors' callback module and the workers'
%% gen_server callback module: init/1 tells them apart by its argument.
-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).
-import(bench_util, [now_ns/0]).

-define(RESTARTS_PER_ROUND, 100).
-define(CHILDREN, 10000).

main([SecsStr]) ->
    Secs = try list_to_float(SecsStr) catch _:_ -> list_to_integer(SecsStr) end,
    process_flag(trap_exit, true),
    %% No supervisor reports: printing one per restart would measure the
    %% logger (ergo's side logs through `tracing`, with no subscriber).
    ok = logger:set_primary_config(level, none),
    io:format("# erlang ~s, erts ~s, schedulers ~p; ~p s per figure~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               erlang:system_info(schedulers_online), Secs]),
    Rc = try
             restart_figure(Secs),
             many_figure(Secs),
             0
         catch C:R:St -> io:format("# ERROR ~p:~p~n# ~p~n", [C, R, St]), 1
         end,
    halt(Rc).

%% Supervisors.
init({restart_sup, Client}) ->
    {ok, {#{strategy => one_for_one, intensity => ?RESTARTS_PER_ROUND, period => 1},
          [#{id => reporter,
             start => {gen_server, start_link, [?MODULE, {worker, Client}, []]}}]}};
init(simple_sup) ->
    {ok, {#{strategy => simple_one_for_one, intensity => 0, period => 1},
          [#{id => worker,
             start => {gen_server, start_link, [?MODULE, {worker, none}, []]}}]}};
%% Workers.
init({worker, none}) ->
    {ok, none};
init({worker, Client}) ->
    Client ! {started, self()},
    {ok, none}.

handle_call(_, _, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.


stop_sup(Sup) ->
    T0 = now_ns(),
    unlink(Sup),
    MRef = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', MRef, process, Sup, _} -> ok end,
    now_ns() - T0.

restart_round() ->
    {ok, Sup} = supervisor:start_link(?MODULE, {restart_sup, self()}),
    First = receive {started, P} -> P end,
    T0 = now_ns(),
    kill_loop(First, ?RESTARTS_PER_ROUND),
    Took = now_ns() - T0,
    stop_sup(Sup),
    Took.

kill_loop(_, 0) -> ok;
kill_loop(Child, N) ->
    exit(Child, kill),
    receive {started, Next} -> kill_loop(Next, N - 1) end.

restart_figure(Secs) ->
    WarmUntil = now_ns() + 300000000,
    warm(WarmUntil),
    End = now_ns() + round(Secs * 1.0e9),
    {Count, Total} = restart_rounds(End, 0, 0),
    io:format("# ~p restarts~n", [Count]),
    io:format("restart_latency ~.1f ns/restart~n", [Total / Count]).

warm(Until) ->
    case now_ns() < Until of
        true -> restart_round(), warm(Until);
        false -> ok
    end.

restart_rounds(End, Count, Total) ->
    case now_ns() < End of
        true -> restart_rounds(End, Count + ?RESTARTS_PER_ROUND, Total + restart_round());
        false -> {Count, Total}
    end.

start_many() ->
    T0 = now_ns(),
    {ok, Sup} = supervisor:start_link(?MODULE, simple_sup),
    start_children(Sup, ?CHILDREN),
    {Sup, now_ns() - T0}.

start_children(_, 0) -> ok;
start_children(Sup, N) ->
    {ok, _} = supervisor:start_child(Sup, []),
    start_children(Sup, N - 1).

many_figure(Secs) ->
    {Sup0, _} = start_many(),
    stop_sup(Sup0),
    End = now_ns() + round(Secs * 1.0e9),
    {Starts, Stops} = many_rounds(End, [], []),
    io:format("# ~p rounds of ~p children~n", [length(Starts), ?CHILDREN]),
    io:format("sup_10k_start ~.1f us~n", [median(Starts) / 1000]),
    io:format("sup_10k_stop ~.1f us~n", [median(Stops) / 1000]).

many_rounds(End, Starts, Stops) ->
    case length(Starts) < 3 orelse now_ns() < End of
        true ->
            {Sup, Took} = start_many(),
            Stop = stop_sup(Sup),
            many_rounds(End, [Took | Starts], [Stop | Stops]);
        false -> {Starts, Stops}
    end.

median(L) -> lists:nth(length(L) div 2 + 1, lists:sort(L)).
