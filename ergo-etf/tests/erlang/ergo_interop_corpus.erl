%% Writes term_to_binary/1,2 output for a corpus of terms covering every tag
%% OTP 25 writes. Record format: <<KeyLen:16, Key, ValLen:32, Val>>.
-module(ergo_interop_corpus).
-export([main/1]).

main([Out]) ->
    {ok, F} = file:open(Out, [write, raw, binary, delayed_write]),
    [emit(F, Name, T) || {Name, T} <- corpus()],
    emit_floats(F),
    emit_unseen(F),
    ok = file:close(F).

rec(F, Key, Val) ->
    K = unicode:characters_to_binary(Key),
    ok = file:write(F, [<<(byte_size(K)):16>>, K, <<(byte_size(Val)):32>>, Val]).

emit(F, Name, T) ->
    Plain = term_to_binary(T),
    rec(F, Name ++ "/t2b", Plain),
    rec(F, Name ++ "/v2", term_to_binary(T, [{minor_version, 2}])),
    rec(F, Name ++ "/z", term_to_binary(T, [compressed])),
    rec(F, Name ++ "/v0", term_to_binary(T, [{minor_version, 0}])),
    rec(F, Name ++ "/zv2", term_to_binary(T, [{compressed, 9}, {minor_version, 2}])),
    case byte_size(Plain) < 4096 of
        true -> rec(F, Name ++ "/w", unicode:characters_to_binary(io_lib:format("~w", [T])));
        false -> ok
    end.

%% Floats whose ~w text Rust's Display must reproduce.
emit_floats(F) ->
    rand:seed(exsss, {1, 2, 3}),
    Pow = [math:pow(10, E) || E <- lists:seq(-307, 308)],
    Pow2 = [math:pow(2, E) || E <- lists:seq(-1074, 1023, 7)],
    Edge = [0.1, 0.2, 0.3, 1/3, 2/3, 100.0, 1000.0, 123456.0, 1234567.0, 1.0e15, 1.0e16,
            9007199254740992.0, 9007199254740994.0, 4503599627370496.0, 1801439850948198.5,
            1801439850948199.0, 360287970189639.7, 360287970189640.0, 5.0e-324,
            2.2250738585072014e-308, 1.7976931348623157e308, 0.0001, 0.00012, 1.0e-5,
            1.5e-5, 123.456, 1.0e21, 1.0e22, 9.999999999999999e22, 12345678901.0],
    Rand = [(rand:uniform() - 0.5) * math:pow(10, rand:uniform(40) - 20) || _ <- lists:seq(1, 3000)],
    Ints = [float(rand:uniform(1 bsl 60)) || _ <- lists:seq(1, 300)]
        ++ [float(I) || I <- lists:seq(1, 2000, 37)]
        ++ [float(I) * 10.0 || I <- lists:seq(1, 2000, 41)],
    %% Values exactly between two shortest candidates (Erlang takes the even one).
    Ties = [float(rand:uniform(1 bsl E)) + Fr
            || E <- lists:seq(30, 53), Fr <- [0.25, 0.75, 0.125, 0.0625], _ <- lists:seq(1, 10)],
    %% Any bit pattern of a finite positive float.
    Bits = [begin <<X/float>> = <<(rand:uniform(16#7FEFFFFFFFFFFFFF)):64>>, X end
            || _ <- lists:seq(1, 2000)],
    Fs = Pow ++ [-X || X <- Pow] ++ Pow2 ++ Edge ++ [-X || X <- Edge] ++ Rand ++ Ints ++ Ties ++ Bits,
    rec(F, "floats/t2b", term_to_binary(Fs)),
    rec(F, "floats/w", unicode:characters_to_binary(
                         lists:join("\n", [io_lib:format("~w", [X]) || X <- Fs]))).

%% Terms naming atoms that only this Erlang process has made: Rust has never
%% seen them, so safe decoding must refuse them.
emit_unseen(F) ->
    Base = "ergo_unseen_" ++ os:getpid() ++ "_"
        ++ integer_to_list(erlang:unique_integer([positive])),
    Top = list_to_atom(Base ++ "_top"),
    Deep = list_to_atom(Base ++ "_deep"),
    Utf8 = list_to_atom(Base ++ [955]),
    Node = list_to_atom(Base ++ "@host"),
    Mod = list_to_atom(Base ++ "_mod"),
    <<131, NodeBytes/binary>> = term_to_binary(Node),
    Pid = binary_to_term(<<131, 88, NodeBytes/binary, 5:32, 0:32, 1:32>>),
    Unseen = [{"top", Top, term_to_binary(Top)},
              {"deep", Deep, term_to_binary({ok, [#{Deep => 1}]})},
              {"utf8", Utf8, term_to_binary([Utf8], [{minor_version, 2}])},
              {"pid_node", Node, term_to_binary(Pid)},
              {"fun_module", Mod, term_to_binary(erlang:make_fun(Mod, ok, 0))}],
    [begin
         rec(F, "unseen:" ++ Name ++ "/name", unicode:characters_to_binary(atom_to_list(A))),
         rec(F, "unseen:" ++ Name ++ "/t2b", B)
     end || {Name, A, B} <- Unseen],
    %% A name no atom was ever made of, not even here: Erlang's own safe mode
    %% refuses it, and so must Rust's.
    Never = unicode:characters_to_binary(Base ++ "_never"),
    NeverBytes = <<131, 100, (byte_size(Never)):16, Never/binary>>,
    Verdict = try binary_to_term(NeverBytes, [safe]) of
                  _ -> <<"accepted">>
              catch error:badarg -> <<"badarg">>
              end,
    rec(F, "unseen:never/name", Never),
    rec(F, "unseen:never/t2b", NeverBytes),
    rec(F, "unseen:never/erlang_safe", Verdict).

closure(Y) -> fun(X) -> X + Y end.
closure3(A, B, C) -> fun() -> {A, B, C} end.
no_free() -> fun() -> ok end.
nested(Y) -> G = closure(Y), fun(X) -> G(X) * 2 end.

neg_zero() -> <<Z/float>> = <<128, 0:56>>, Z.

remote_pid() -> binary_to_term(<<131, 88, 100, 10:16, "other@host", 5:32, 1:32, 7:32>>).
remote_port_v4() -> binary_to_term(<<131, 120, 100, 10:16, "other@host", 1:32, 5:32, 7:32>>).
remote_port() -> binary_to_term(<<131, 89, 100, 10:16, "other@host", 77:32, 7:32>>).
remote_ref() -> binary_to_term(<<131, 90, 5:16, 100, 10:16, "other@host", 7:32, 1:32, 2:32, 3:32, 4:32, 5:32>>).

corpus() ->
    Self = self(),
    Spawned = spawn(fun() -> ok end),
    {_, MonRef} = spawn_monitor(fun() -> ok end),
    Mb = binary:copy(list_to_binary(lists:seq(0, 255)), 4096),
    Lambda = list_to_atom([955]),
    EAcute = list_to_atom([233]),
    Keys = lists:seq(1, 1000),
    BigMap = maps:from_list(
               [{case K rem 6 of
                     0 -> K;
                     1 -> list_to_atom("key_" ++ integer_to_list(K));
                     2 -> integer_to_binary(K);
                     3 -> {K, tuple};
                     4 -> K + 0.5;
                     5 -> [K, K + 1]
                 end, K} || K <- Keys]),
    [{"int_0", 0}, {"int_255", 255}, {"int_256", 256}, {"int_minus_1", -1},
     {"int_2_31_minus_1", (1 bsl 31) - 1}, {"int_2_31", 1 bsl 31},
     {"int_minus_2_31", -(1 bsl 31)}, {"int_minus_2_31_minus_1", -(1 bsl 31) - 1},
     {"int_2_63_minus_1", (1 bsl 63) - 1}, {"int_2_63", 1 bsl 63},
     {"int_minus_2_63", -(1 bsl 63)}, {"int_minus_2_63_minus_1", -(1 bsl 63) - 1},
     {"int_2_64_minus_1", (1 bsl 64) - 1}, {"int_2_64", 1 bsl 64}, {"int_minus_2_64", -(1 bsl 64)},
     {"int_2_2000", 1 bsl 2000}, {"int_minus_2_2000", -(1 bsl 2000)},
     {"int_2_2039", 1 bsl 2039}, {"int_2_2040", 1 bsl 2040}, {"int_minus_2_4000", -(1 bsl 4000)},
     {"float_minus_0", neg_zero()}, {"float_0", 0.0}, {"float_1", 1.0}, {"float_1e300", 1.0e300},
     {"float_5e_minus_324", 5.0e-324}, {"float_minus_1_5", -1.5}, {"float_pi", math:pi()},
     {"float_max", 1.7976931348623157e308},
     {"atom_empty", ''}, {"atom_ok", ok}, {"atom_true", true}, {"atom_e_acute", EAcute},
     {"atom_lambda", Lambda}, {"atom_mixed_latin1_utf8", list_to_atom("a" ++ [233, 955])},
     {"atom_255_lambdas", list_to_atom(lists:duplicate(255, 955))},
     {"atom_255_e_acutes", list_to_atom(lists:duplicate(255, 233))},
     {"atom_255_ascii", list_to_atom(lists:duplicate(255, $z))},
     {"atom_elixir_foo", 'Elixir.Foo'}, {"atom_with_space", 'hello world'},
     {"atom_reserved_word", 'end'}, {"atom_with_quote", 'it\'s'}, {"atom_at_sign", 'a@b_C1'},
     {"binary_empty", <<>>}, {"binary_small", <<"hello">>}, {"binary_bytes", <<1, 2, 255>>},
     {"binary_1mb", Mb},
     {"bits_1_3", <<1:3>>}, {"bits_1_2_3_5", <<1, 2, 3:5>>}, {"bits_7", <<127:7>>},
     {"pid_self", Self}, {"pid_spawned", Spawned}, {"pid_listed", list_to_pid("<0.1234.5>")},
     {"pid_remote", remote_pid()},
     {"port_first", hd(erlang:ports())}, {"port_remote", remote_port()},
     {"port_remote_v4", remote_port_v4()},
     {"ref_make_ref", make_ref()}, {"ref_alias", alias()}, {"ref_monitor", MonRef},
     {"ref_remote_5_words", remote_ref()},
     {"tuple_empty", {}}, {"tuple_small", {ok, <<"x">>, [1]}}, {"tuple_nested", {a, {b, {c}}}},
     {"tuple_255", list_to_tuple(lists:seq(1, 255))}, {"tuple_256", list_to_tuple(lists:seq(1, 256))},
     {"tuple_70000", list_to_tuple(lists:seq(1, 70000))},
     {"nil", []},
     {"string_abc", "abc"}, {"string_bytes", [0, 255, 10]},
     {"string_65535", lists:duplicate(65535, $a)}, {"string_65536", lists:duplicate(65536, $a)},
     {"charlist_unicode", [955, $x]}, {"list_with_256", [1, 256]},
     {"list_mixed", [1, a, <<"b">>, 2.5, {x}, [], "str", -5, 1 bsl 70, #{k => v}]},
     {"list_nested", [[1, [2, [3]]], [[]]]},
     {"improper_1_2", [1 | 2]}, {"improper_a_b_binary", [a, b | <<>>]},
     {"improper_string_atom", [$a, $b | c]},
     {"map_empty", #{}}, {"map_one", #{a => 1}}, {"map_small", #{a => 1, b => <<"two">>, 3 => [c]}},
     {"map_32_keys", maps:from_list([{K, K} || K <- lists:seq(1, 32)])},
     {"map_33_keys", maps:from_list([{K, K} || K <- lists:seq(1, 33)])},
     {"map_1000_mixed_keys", BigMap},
     {"map_nested", #{a => #{b => #{c => []}}, <<"k">> => #{}}},
     {"map_int_and_float_keys", #{1 => int, 1.0 => float}},
     {"map_map_key", #{#{a => 1} => x}},
     {"fun_export", fun lists:map/2}, {"fun_closure", closure(42)},
     {"fun_closure_3_free", closure3(<<"bin">>, #{k => [1 | 2]}, Self)},
     {"fun_no_free", no_free()}, {"fun_nested", nested(7)},
     {"everything", {ok, [#{key => {1, [2, 3 | 4]}, <<"b">> => 2.5}], Self, MonRef,
                     fun lists:map/2, <<1:3>>, 1 bsl 100, "abc", -0.5}}].
