%% The NIF's module, as HyperBEAM's dev_wasi_nn_nif: the functions are
%% replaced by wasi_nn_nif.c when the module loads. WNL_NIF names the NIF
%% library (without .so) and WNL_BACKEND_LIB the libwasi_nn_backend.so it
%% dlopen()s, passed as load_info.
-module(wasi_nn_nif).
-export([load_by_name_with_config/2, init_execution_context/1, run_inference/3, counters/0]).
-on_load(init/0).

init() ->
    erlang:load_nif(os:getenv("WNL_NIF"), os:getenv("WNL_BACKEND_LIB")).

load_by_name_with_config(_Path, _Config) -> erlang:nif_error(not_loaded).
init_execution_context(_SessionId) -> erlang:nif_error(not_loaded).
run_inference(_Session, _Input, _Options) -> erlang:nif_error(not_loaded).
counters() -> erlang:nif_error(not_loaded).
