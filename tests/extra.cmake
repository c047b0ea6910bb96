# Tests that are scripts rather than C or C++ programs.
foreach(lib wasi_nn_llamacpp wasi_nn_backend)
  add_test(NAME symbols.${lib}
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/check_symbols.sh" "$<TARGET_FILE:${lib}>"
            "${PROJECT_SOURCE_DIR}/src/abi/exports.map")
  set_tests_properties(symbols.${lib} PROPERTIES LABELS unit)
endforeach()

if(TARGET wasi-nn-llama-mkmodel)
  add_test(NAME tools.mkmodel
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/mkmodel_test.sh" "${PROJECT_BINARY_DIR}" "${LLAMA_CPP_BIN}" "${LLAMA_CPP_SRC}")
  set_tests_properties(tools.mkmodel PROPERTIES LABELS integration TIMEOUT 900 RUN_SERIAL TRUE)
endif()

add_test(NAME tools.cli_run
  COMMAND "$<TARGET_FILE:wasi-nn-llama>" run -q -m "${WNL_MODELS_DIR}/stories260K.gguf" -p "Once upon a time"
          --config "{\"temp\":0,\"max_tokens\":32,\"logging\":{\"level\":\"warn\"}}")
set_tests_properties(tools.cli_run PROPERTIES LABELS integration RUN_SERIAL TRUE
  PASS_REGULAR_EXPRESSION "there was a little girl named Lily. She loved to play outside in the park. One day, she saw")

add_test(NAME tools.cli_stream
  COMMAND "$<TARGET_FILE:wasi-nn-llama>" run -q --stream -m "${WNL_MODELS_DIR}/stories260K.gguf" -p "Once upon a time"
          --config "{\"temp\":0,\"max_tokens\":32,\"logging\":{\"level\":\"warn\"}}")
set_tests_properties(tools.cli_stream PROPERTIES LABELS integration RUN_SERIAL TRUE
  PASS_REGULAR_EXPRESSION "there was a little girl named Lily. She loved to play outside in the park. One day, she saw")

# 64 threads on 8 backend contexts and 2 models; 4 requests each to fit CI
# (the full load is `stress_test 64 1000 8`).
add_executable(stress_test stress/stress_test.cpp)
target_include_directories(stress_test PRIVATE "${PROJECT_SOURCE_DIR}/include")
target_link_libraries(stress_test PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
target_compile_definitions(stress_test PRIVATE ${WNL_TEST_DEFS})
add_dependencies(stress_test wasi_nn_llamacpp)
add_test(NAME stress.mixed COMMAND stress_test 64 4 8)
set_tests_properties(stress.mixed PROPERTIES LABELS stress TIMEOUT 900 RUN_SERIAL TRUE)
# The same with a session store (docs/sessions.md); a fresh directory each run.
add_test(NAME stress.store COMMAND bash -c "d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && \"$0\" 64 4 8 \"$d\""
  "$<TARGET_FILE:stress_test>")
set_tests_properties(stress.store PROPERTIES LABELS stress TIMEOUT 900 RUN_SERIAL TRUE)

# cmake --install into a temporary prefix, then find_package and pkg-config
# consumers and the installed CLI (docs/install.md).
add_test(NAME tools.install
  COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/install_test.sh" "${PROJECT_BINARY_DIR}" "${PROJECT_SOURCE_DIR}")
set_tests_properties(tools.install PROPERTIES LABELS integration TIMEOUT 600 RUN_SERIAL TRUE)

add_test(NAME tools.rpc_servers
  COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/rpc_test.sh" "$<TARGET_FILE:wasi-nn-llama>" "${LLAMA_CPP_BIN}" "${WNL_MODELS_DIR}")
set_tests_properties(tools.rpc_servers PROPERTIES LABELS integration TIMEOUT 300 RUN_SERIAL TRUE)

# An Erlang node drives the legacy library through a NIF of our own, as
# HyperBEAM does (tests/erlang, docs/hyperbeam.md). Not in sanitizer builds:
# an instrumented library does not load into an uninstrumented erl.
find_program(WNL_ERL erl)
find_program(WNL_ERLC erlc)
if(WNL_ERL AND WNL_ERLC AND NOT WASI_NN_LLAMA_SANITIZE)
  add_test(NAME erlang.nif
    COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/erlang/run_test.sh" "$<TARGET_FILE:wasi_nn_backend>"
            "${WNL_MODELS_DIR}/stories260K.gguf" "${CMAKE_C_COMPILER}")
  set_tests_properties(erlang.nif PROPERTIES LABELS integration TIMEOUT 600 RUN_SERIAL TRUE)
endif()
