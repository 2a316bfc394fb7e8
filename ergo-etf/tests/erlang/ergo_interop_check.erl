%% Checks what Rust encoded: for each record, binary_to_term/1 of Rust's bytes
%% must be exactly (=:=) the term the Erlang expression denotes, and Erlang's
%% own term_to_binary/2 of that term must be Rust's (uncompressed) bytes.
%%
%% Input records:
%%   <<NameLen:16, Name, ExprLen:32, Expr, MinorVersion:8,
%%     BytesLen:32, Bytes, PlainLen:32, Plain>>
%% Output: one line per record, "Name\tVerdict\tBytes\tDetail\n", where Verdict
%% is equal, differ, error or bad_expr and Bytes is same or differ.
-module(ergo_interop_check).
-export([main/1]).

main([In, Out]) ->
    {ok, Data} = file:read_file(In),
    ok = file:write_file(Out, check_all(Data)).

check_all(<<>>) ->
    [];
check_all(<<NL:16, Name:NL/binary, EL:32, Expr:EL/binary, Minor:8, BL:32, Bytes:BL/binary,
            PL:32, Plain:PL/binary, Rest/binary>>) ->
    [check(Name, Expr, Minor, Bytes, Plain) | check_all(Rest)].

check(Name, Expr, Minor, Bytes, Plain) ->
    {Verdict, Same, Detail} =
        case eval(Expr) of
            {ok, Expected} ->
                try binary_to_term(Bytes) of
                    Term ->
                        {yes_no(Term =:= Expected, <<"equal">>),
                         yes_no(term_to_binary(Expected, [{minor_version, Minor}]) =:= Plain,
                                <<"same">>),
                         brief(Term)}
                catch
                    Class:Reason -> {<<"error">>, <<"differ">>, brief({Class, Reason})}
                end;
            {error, Why} ->
                {<<"bad_expr">>, <<"differ">>, brief(Why)}
        end,
    [Name, $\t, Verdict, $\t, Same, $\t, Detail, $\n].

yes_no(true, Yes) -> Yes;
yes_no(false, _) -> <<"differ">>.

eval(Expr) ->
    try
        {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Expr) ++ "."),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, V, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
        {ok, V}
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.

%% A one-line, depth-limited rendering for failure messages.
brief(T) ->
    S = unicode:characters_to_binary(io_lib:format("~tW", [T, 10])),
    binary:replace(binary:replace(S, <<"\n">>, <<" ">>, [global]), <<"\t">>, <<" ">>, [global]).
