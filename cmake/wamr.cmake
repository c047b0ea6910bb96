# WAMR 2.4.5 (iwasm and its runtime library libiwasm.so), built offline and
# cached by scripts/wamr.sh. Given its prefix, this builds the
# multi-instance host (examples/host) and the tests that run the wasm guest
# on a real WAMR (tests/wamr, label `wamr`):
#   cmake -S . -B build -DWASI_NN_LLAMA_WAMR_DIR="$(scripts/wamr.sh | tail -1)"
# Without it nothing here is built. scripts/test.sh sets it in its WAMR stage.
set(WASI_NN_LLAMA_WAMR_DIR "" CACHE PATH "Prefix printed by scripts/wamr.sh (WAMR iwasm + libiwasm.so)")
set(WASI_NN_LLAMA_GUEST_WASM "${PROJECT_BINARY_DIR}/guest/chat.wasm" CACHE FILEPATH
    "The chat guest built by scripts/build-guest.sh")

if(WASI_NN_LLAMA_WAMR_DIR)
  set(WNL_IWASM "${WASI_NN_LLAMA_WAMR_DIR}/build/iwasm")
  if(NOT EXISTS "${WNL_IWASM}" OR NOT EXISTS "${WASI_NN_LLAMA_WAMR_DIR}/build/libiwasm.so"
     OR NOT EXISTS "${WASI_NN_LLAMA_WAMR_DIR}/include/wasm_export.h")
    message(FATAL_ERROR "WASI_NN_LLAMA_WAMR_DIR=${WASI_NN_LLAMA_WAMR_DIR} holds no WAMR build (run scripts/wamr.sh)")
  endif()
  add_library(wnl_wamr_runtime SHARED IMPORTED)
  set_target_properties(wnl_wamr_runtime PROPERTIES
    IMPORTED_LOCATION "${WASI_NN_LLAMA_WAMR_DIR}/build/libiwasm.so"
    INTERFACE_INCLUDE_DIRECTORIES "${WASI_NN_LLAMA_WAMR_DIR}/include")
  # WAMR's wasi-nn host dlopen()s "libwasi_nn_llamacpp.so" by that bare
  # name: the loader must find ours (and nothing else) on this path.
  set(WNL_WAMR_LIBRARY_PATH "$<TARGET_FILE_DIR:wasi_nn_llamacpp>:${WASI_NN_LLAMA_WAMR_DIR}/build")
endif()
