%% ETF throughput in Erlang/OTP: term_to_binary/1 and binary_to_term/1 on
%% the four shapes ergo's etf_side measures, timed the same way (a batch that
%% doubles until one batch takes 2 ms). Prints "name value unit" lines.
-module(etf_bench).
-export([main/1]).

-import(bench_util, [run_for/2, out/3]).

enc_n(0, _, Acc) -> Acc;
enc_n(N, T, _) -> enc_n(N - 1, T, term_to_binary(T)).
dec_n(0, _, Acc) -> Acc;
dec_n(N, B, _) -> dec_n(N - 1, B, binary_to_term(B)).

main([SecsArg]) ->
    Secs = list_to_float(SecsArg),
    io:format("# otp_release ~s~n", [erlang:system_info(otp_release)]),
    Terms = [{"small_tuple", {ok, 42, <<"hello">>}},
             {"map100", maps:from_list([{list_to_atom("key_" ++ integer_to_list(I)), I}
                                        || I <- lists:seq(1, 100)])},
             {"list10k_int", lists:seq(1, 10000)},
             {"bin1mb", rand:bytes(1 bsl 20)}],
    lists:foreach(fun({Name, T}) -> one(Name, T, Secs) end, Terms),
    halt(0).

one(Name, T, Secs) ->
    Bin = term_to_binary(T),
    T = binary_to_term(Bin),
    Sz = byte_size(Bin),
    io:format("# etf_~s encoded_size ~p bytes~n", [Name, Sz]),
    FE = fun(N) -> enc_n(N, T, none) end,
    FD = fun(N) -> dec_n(N, Bin, none) end,
    _ = run_for(FE, 0.2),
    {OE, NE} = run_for(FE, Secs),
    _ = run_for(FD, 0.2),
    {OD, ND} = run_for(FD, Secs),
    out("etf_encode_" ++ Name ++ "_rate", OE / (NE / 1.0e9), "ops/s"),
    out("etf_encode_" ++ Name ++ "_thru", Sz * OE / (NE / 1.0e9) / 1.0e6, "MB/s"),
    out("etf_decode_" ++ Name ++ "_rate", OD / (ND / 1.0e9), "ops/s"),
    out("etf_decode_" ++ Name ++ "_thru", Sz * OD / (ND / 1.0e9) / 1.0e6, "MB/s").
