%% Helpers shared by the Erlang sides of the side-by-side benchmarks: the
%% clock, the timing loop, and the "name value unit" output lines.
-module(bench_util).
-export([now_ns/0, run_for/2, out/3, fmt/1]).

now_ns() -> erlang:monotonic_time(nanosecond).

%% Calls F(Batch) until Secs have passed, doubling Batch while a batch takes
%% under 2 ms (so the clock is read rarely). Returns {Ops, ElapsedNs}.
run_for(F, Secs) ->
    T0 = now_ns(),
    run_for(F, 1, 0, T0, T0, T0 + round(Secs * 1.0e9)).

run_for(F, Batch, Ops, T0, Prev, Deadline) ->
    F(Batch),
    T = now_ns(),
    Done = Ops + Batch,
    if
        T >= Deadline -> {Done, T - T0};
        T - Prev < 2000000 -> run_for(F, Batch * 2, Done, T0, T, Deadline);
        true -> run_for(F, Batch, Done, T0, T, Deadline)
    end.

%% One figure: "Name Value Unit" (floats rounded to what matters).
out(Name, Value, Unit) when is_float(Value) ->
    io:format("~s ~s ~s~n", [Name, fmt(Value), Unit]);
out(Name, Value, Unit) ->
    io:format("~s ~p ~s~n", [Name, Value, Unit]).

fmt(V) when V >= 1000 -> float_to_list(float(round(V)), [{decimals, 0}]);
fmt(V) when V >= 10 -> float_to_list(V, [{decimals, 1}]);
fmt(V) -> float_to_list(V, [{decimals, 3}]).
