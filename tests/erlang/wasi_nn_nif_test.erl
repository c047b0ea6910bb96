%% Drives libwasi_nn_backend.so through wasi_nn_nif the way a HyperBEAM node
%% does: one backend for the node, many sessions from many processes on
%% dirty schedulers, garbage collection closing the handles, a module purge
%% (deinit_backend + dlclose) and reload (dlopen again), and finally a halt
%% with the backend still open. Prints "ok - ..." / "not ok - ..." lines and
%% "N passed, M failed"; halts with 0 only when everything passed.
-module(wasi_nn_nif_test).
-export([main/0]).

-define(PROMPT, "Once upon a time").
%% stories260K, greedy, 32 tokens (../shared/models/README.md); the NIF
%% keeps the reply's NUL.
-define(GOLDEN, <<", there was a little girl named Lily. She loved to play outside in the park. One day, she saw", 0>>).
-define(CONFIG, "{\"model\":{\"n_ctx\":2048,\"n_predict\":32,\"n_gpu_layers\":98},"
                "\"sampling\":{\"temperature\":0},\"stopping\":{\"max_tokens\":32},"
                "\"backend\":{\"max_sessions\":64}}").

main() ->
    put(passed, 0),
    put(failed, 0),
    try run()
    catch Class:Reason:Stack -> check(false, "no exception: ~p:~p ~p", [Class, Reason, Stack])
    end,
    io:format("~b passed, ~b failed~n", [get(passed), get(failed)]),
    %% The backend is still open: the node exits without deinit_backend.
    halt(case get(failed) of 0 -> 0; _ -> 1 end).

check(Cond, Fmt, Args) ->
    case Cond of
        true -> put(passed, get(passed) + 1), io:format("ok - " ++ Fmt ++ "~n", Args);
        _ -> put(failed, get(failed) + 1), io:format("not ok - " ++ Fmt ++ "~n", Args)
    end,
    Cond.

model() -> os:getenv("WNL_MODEL").

run() ->
    check(code:ensure_loaded(wasi_nn_nif) =:= {module, wasi_nn_nif}, "the NIF loads (dlopen of the library)", []),
    serve("first load"),
    sessions_held_by_many_terms(),
    %% Purge: the NIF's unload runs deinit_backend and dlclose.
    code:purge(wasi_nn_nif),
    check(code:delete(wasi_nn_nif), "code:delete", []),
    check(code:purge(wasi_nn_nif) =:= false, "code:purge (no process runs the old code)", []),
    check(not erlang:module_loaded(wasi_nn_nif), "the module is gone", []),
    %% Reload: the NIF's load dlopens the library again.
    check(code:ensure_loaded(wasi_nn_nif) =:= {module, wasi_nn_nif}, "the module loads again", []),
    serve("after purge and reload").

%% One backend, many sessions, each from its own process.
serve(When) ->
    check(wasi_nn_nif:load_by_name_with_config(model(), ?CONFIG) =:= ok, "~s: load_by_name_with_config", [When]),
    %% The NIF loads before every request: the same graph each time.
    Loads = [wasi_nn_nif:load_by_name_with_config(model(), ?CONFIG) || _ <- lists:seq(1, 200)],
    check(lists:all(fun(R) -> R =:= ok end, Loads), "~s: 200 more loads", [When]),
    Options = ["", "{}", null, "{\"max_tokens\":32}"],
    Parent = self(),
    N = 16,
    Pids = [spawn_monitor(fun() -> Parent ! {self(), user(I, lists:nth(1 + I rem 4, Options))} end)
            || I <- lists:seq(1, N)],
    Results = [receive {Pid, R} -> R end || {Pid, _} <- Pids],
    [receive {'DOWN', Ref, process, _, normal} -> ok end || {_, Ref} <- Pids],
    Firsts = [F || {F, _, _} <- Results],
    Seconds = [S || {_, S, _} <- Results],
    Samples = [X || {_, _, X} <- Results],
    check(lists:all(fun(F) -> F =:= {ok, ?GOLDEN} end, Firsts),
          "~s: ~b sessions on dirty schedulers, each first reply the golden text", [When, N]),
    [Second | _] = Seconds,
    check(element(1, Second) =:= ok andalso Second =/= {ok, ?GOLDEN}
          andalso lists:all(fun(S) -> S =:= Second end, Seconds),
          "~s: each session's second reply continues its own history", [When]),
    check(lists:all(fun({ok, B}) -> byte_size(B) > 1 andalso binary:last(B) =:= 0; (_) -> false end, Samples),
          "~s: options {\"seed\":42,\"temperature\":0.1}: a reply with its NUL", [When]),
    %% The processes are gone: garbage collection closes every handle.
    wait_closed(When).

user(I, Options) ->
    {ok, S} = wasi_nn_nif:init_execution_context("user-" ++ integer_to_list(I)),
    First = wasi_nn_nif:run_inference(S, ?PROMPT, Options),
    Second = wasi_nn_nif:run_inference(S, " Then", "{}"),
    {ok, S2} = wasi_nn_nif:init_execution_context("sampled-" ++ integer_to_list(I)),
    Sampled = wasi_nn_nif:run_inference(S2, ?PROMPT, "{\"seed\":42,\"temperature\":0.1}"),
    {First, Second, Sampled}.

%% Several terms hold one session: each from its own init; dropping some
%% closes their handles, and the one left still works.
sessions_held_by_many_terms() ->
    Terms = [begin {ok, T} = wasi_nn_nif:init_execution_context("shared"), T end || _ <- lists:seq(1, 5)],
    Replies = [wasi_nn_nif:run_inference(T, ?PROMPT, "{\"max_tokens\":4}") || T <- Terms],
    check(lists:all(fun(R) -> element(1, R) =:= ok end, Replies), "5 terms on one session: each runs", []),
    Last = keep_last(Terms),
    {Opened, _, _} = wasi_nn_nif:counters(),
    wait_counters(Opened - 1),
    check(element(1, wasi_nn_nif:run_inference(Last, ?PROMPT, "{\"max_tokens\":4}")) =:= ok,
          "after 4 of them are collected, the last term still runs", []),
    erlang:garbage_collect(),
    wait_closed("shared session").

%% Runs GC with only the last term referenced.
keep_last(Terms) ->
    Last = lists:last(Terms),
    erlang:garbage_collect(),
    Last.

wait_closed(When) ->
    erlang:garbage_collect(),
    {Opened, _, _} = wasi_nn_nif:counters(),
    {_, Closed, Failed} = wait_counters(Opened),
    check(Closed =:= Opened andalso Failed =:= 0,
          "~s: garbage collection closed all ~b handles, no close failed", [When, Opened]).

%% Waits until `Want` closes have been made (destructors may run late).
wait_counters(Want) ->
    case wasi_nn_nif:counters() of
        {_, Closed, Failed} = C when Closed + Failed >= Want -> C;
        _ -> erlang:garbage_collect(), timer:sleep(10), wait_counters(Want)
    end.
