%% Drives OTP's observer, as an operator would with its Nodes menu, onto
%% another node, then opens its System, Load Charts, Applications and
%% Processes tabs one after another, saving a screenshot of each (with
%% ImageMagick's `import`, so it runs under a virtual X server).
%%
%%   erl -name N -setcookie C -noshell -pa DIR \
%%       -run observer_tabs main TargetNode OutDir
%%
%% Prints one line per step; the last is "observer still running" when no
%% tab crashed.
-module(observer_tabs).
-export([main/1]).

main([TargetStr, OutDir]) ->
    Target = list_to_atom(TargetStr),
    pong = net_adm:ping(Target),
    ok = observer:start(),
    timer:sleep(3000),
    Nodes = element(11, observer_state()),
    io:format("nodes menu: ~p~n", [Nodes]),
    %% The Nodes menu's entries have ids 1001, 1002, ... in list order;
    %% choosing one is a menu event to the observer process.
    Id = 1000 + position(Target, Nodes),
    observer ! {wx, Id, element(2, observer_state()), [],
                {wxCommand, command_menu_selected, [], 0, 0}},
    timer:sleep(2000),
    io:format("observer node now: ~p~n", [element(10, observer_state())]),
    lists:foreach(
      fun({Page, Name}) ->
              %% Selecting a notebook page from inside the observer process
              %% (it holds the wx environment); the page-changed event then
              %% moves the active tab to the chosen node, as a click does.
              sys:replace_state(observer,
                                fun(W) ->
                                        St = lists:nth(2, W),
                                        wxNotebook:setSelection(element(6, St), Page),
                                        W
                                end),
              timer:sleep(3000),
              os:cmd("import -window root " ++ filename:join(OutDir, Name ++ ".png")),
              Tab = element(9, observer_state()),
              io:format("tab ~s: ~p alive ~p~n", [Name, Tab, is_process_alive(Tab)])
      end,
      [{0, "system"}, {1, "load_charts"}, {3, "applications"}, {4, "processes"}]),
    case whereis(observer) of
        undefined -> io:format("observer crashed~n");
        _ -> io:format("observer still running~n")
    end,
    halt().

observer_state() -> lists:nth(2, sys:get_state(observer)).

position(X, [X | _]) -> 1;
position(X, [_ | T]) -> 1 + position(X, T).
