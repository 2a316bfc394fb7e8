%% The peer figures of issue 20, from one Erlang origin using OTP's own
%% `peer`: how long `peer:start_link/1` takes until the peer runs, for an
%% `erl` peer and for the ergo peer (interop_node), and the `peer:call/4`
%% round trip over TCP and over standard I/O to each. Both kinds of peer are
%% started by the same origin in the same run, alternately.
-module(peer_bench).
-export([main/1]).

main([SecsS, Exec]) ->
    Secs = list_to_float(SecsS),
    Conns = [{standard_io, standard_io}, {tcp, {{127,0,0,1}, 0}}],
    Boots = [begin
                 {Erl, Ergo} = boots(Conn, Exec, 5),
                 io:format("boot_~s erl ~.1f ms, ergo ~.1f ms (median of 5): ergo ~.1fx faster~n",
                           [Name, Erl / 1000, Ergo / 1000, Erl / Ergo]),
                 {Name, Erl / Ergo}
             end || {Name, Conn} <- Conns],
    Calls = [begin
                 ErlUs = call_rate(opts(Conn, erl, Exec), Secs),
                 ErgoUs = call_rate(opts(Conn, ergo, Exec), Secs),
                 io:format("call_~s erl ~.1f us, ergo ~.1f us per peer:call: ergo ~.2fx~n",
                           [Name, ErlUs, ErgoUs, ErlUs / ErgoUs]),
                 {Name, ErlUs / ErgoUs}
             end || {Name, Conn} <- Conns],
    io:format("~nissue 20 targets:~n"),
    [io:format("  boot ~s: ergo ~.1fx faster than erl (target >= 10x): ~s~n",
               [N, R, verdict(R >= 10)]) || {N, R} <- Boots],
    [io:format("  peer:call ~s: ergo ~.2fx erl (reported)~n", [N, R]) || {N, R} <- Calls],
    halt().

verdict(true) -> "met";
verdict(false) -> "NOT met".

opts(Conn, erl, _Exec) ->
    #{name => peer:random_name(erl), host => "127.0.0.1", connection => Conn};
opts(Conn, ergo, Exec) ->
    #{name => peer:random_name(ergo), host => "127.0.0.1", connection => Conn,
      exec => Exec, args => ["-setcookie", atom_to_list(erlang:get_cookie())]}.

%% Median start times (microseconds) of N erl and N ergo peers, alternating.
boots(Conn, Exec, N) ->
    Pairs = [{boot(opts(Conn, erl, Exec)), boot(opts(Conn, ergo, Exec))}
             || _ <- lists:seq(1, N)],
    {median([E || {E, _} <- Pairs]), median([G || {_, G} <- Pairs])}.

boot(Opts) ->
    T0 = erlang:monotonic_time(microsecond),
    {ok, P, _Node} = peer:start_link(Opts),
    T = erlang:monotonic_time(microsecond) - T0,
    ok = peer:stop(P),
    T.

median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).

%% Microseconds per sequential peer:call of erlang:node/0.
call_rate(Opts, Secs) ->
    {ok, P, Node} = peer:start_link(Opts),
    Node = peer:call(P, erlang, node, []),
    Deadline = erlang:monotonic_time(microsecond) + round(Secs * 1000000),
    T0 = erlang:monotonic_time(microsecond),
    N = calls(P, Deadline, 0),
    Us = (erlang:monotonic_time(microsecond) - T0) / N,
    ok = peer:stop(P),
    Us.

calls(P, Deadline, N) ->
    _ = peer:call(P, erlang, node, []),
    case N rem 100 =:= 0 andalso erlang:monotonic_time(microsecond) > Deadline of
        true -> N + 1;
        false -> calls(P, Deadline, N + 1)
    end.
