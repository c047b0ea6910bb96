# The fuzzing build (WASI_NN_LLAMA_FUZZ=ON): our engine and ABI shims are
# compiled with libFuzzer's coverage instrumentation plus ASan and UBSan;
# llama.cpp stays the uninstrumented static build from the cache (g++,
# libstdc++ on both sides). The harnesses in tests/fuzz link libFuzzer.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "WASI_NN_LLAMA_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang); "
                      "got ${CMAKE_CXX_COMPILER_ID}")
endif()
if(WASI_NN_LLAMA_SANITIZE)
  message(FATAL_ERROR "WASI_NN_LLAMA_FUZZ brings its own sanitizers; leave WASI_NN_LLAMA_SANITIZE empty")
endif()
set(WNL_FUZZ_SANITIZERS "address,undefined")
add_compile_options(-fsanitize=fuzzer-no-link,${WNL_FUZZ_SANITIZERS} -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer -g)
set(WNL_FUZZ_LINK_OPTIONS -fsanitize=fuzzer,${WNL_FUZZ_SANITIZERS})
message(STATUS "wasi-nn-llama: libFuzzer build (${WNL_FUZZ_SANITIZERS})")
