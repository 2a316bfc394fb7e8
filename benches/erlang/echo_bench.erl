%% The Erlang side of benches/daemon_vs_erlang.sh: a gen_tcp echo server
%% as Erlang programs write one, a process per connection reading with
%% {active, once} and writing back what it read.
%%
%%   erl -noshell -pa DIR -run echo_bench server PORT
%%
%% Prints "ready" once it listens.
-module(echo_bench).
-export([server/1]).

server([PortStr]) ->
    Port = list_to_integer(PortStr),
    {ok, L} = gen_tcp:listen(Port, [binary, {active, false}, {reuseaddr, true},
                                    {backlog, 4096}, {nodelay, true},
                                    {ip, {127, 0, 0, 1}}]),
    io:format("ready~n"),
    accept(L).

accept(L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> ok end, loop(S) end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L).

loop(S) ->
    ok = inet:setopts(S, [{active, once}]),
    receive
        {tcp, S, Data} ->
            ok = gen_tcp:send(S, Data),
            loop(S);
        {tcp_closed, S} -> ok;
        {tcp_error, S, _} -> ok
    end.
