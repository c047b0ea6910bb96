# Imports the llama.cpp build made by scripts/llama-cpp.sh: its static
# libraries as one target, llama_cpp, and its reference tools' paths.
set(LLAMA_CPP_PREFIX "" CACHE PATH "Build prefix printed by scripts/llama-cpp.sh")
if(NOT LLAMA_CPP_PREFIX OR NOT EXISTS "${LLAMA_CPP_PREFIX}/build/src/libllama.a")
  message(FATAL_ERROR
    "llama.cpp is not built. Run scripts/setup.sh (or scripts/llama-cpp.sh and pass "
    "-DLLAMA_CPP_PREFIX=<the path it prints>). LLAMA_CPP_PREFIX='${LLAMA_CPP_PREFIX}'")
endif()

set(LLAMA_CPP_SRC "${LLAMA_CPP_PREFIX}/src")
set(LLAMA_CPP_BUILD "${LLAMA_CPP_PREFIX}/build")
set(LLAMA_CPP_BIN "${LLAMA_CPP_BUILD}/bin")

file(GLOB_RECURSE _llama_libs
  "${LLAMA_CPP_BUILD}/common/*.a"
  "${LLAMA_CPP_BUILD}/src/*.a"
  "${LLAMA_CPP_BUILD}/ggml/*.a"
  "${LLAMA_CPP_BUILD}/vendor/*.a")

find_package(Threads REQUIRED)
add_library(llama_cpp INTERFACE)
target_include_directories(llama_cpp SYSTEM INTERFACE
  "${LLAMA_CPP_SRC}/include"
  "${LLAMA_CPP_SRC}/ggml/include"
  "${LLAMA_CPP_SRC}/common"
  "${LLAMA_CPP_SRC}/vendor")
# A group, because the archives refer to each other in both directions.
target_link_libraries(llama_cpp INTERFACE
  -Wl,--start-group ${_llama_libs} -Wl,--end-group
  Threads::Threads ${CMAKE_DL_LIBS} m)

if(EXISTS "${LLAMA_CPP_BUILD}/ggml/src/ggml-cuda")
  find_package(CUDAToolkit REQUIRED)
  # The static CUDA libraries where the toolkit ships them (cudart does;
  # cuBLAS often only as shared objects), the shared ones otherwise.
  set(_cuda_libs "")
  foreach(_lib cudart cublas cublasLt)
    if(TARGET CUDA::${_lib}_static)
      list(APPEND _cuda_libs CUDA::${_lib}_static)
    else()
      list(APPEND _cuda_libs CUDA::${_lib})
    endif()
  endforeach()
  list(APPEND _cuda_libs CUDA::cuda_driver)
  # ggml-cuda uses NCCL when its configure found it.
  load_cache("${LLAMA_CPP_BUILD}" READ_WITH_PREFIX _llama_ GGML_CUDA_NCCL NCCL_LIBRARY)
  if(_llama_GGML_CUDA_NCCL AND _llama_NCCL_LIBRARY AND EXISTS "${_llama_NCCL_LIBRARY}")
    list(APPEND _cuda_libs "${_llama_NCCL_LIBRARY}")
  endif()
  target_link_libraries(llama_cpp INTERFACE ${_cuda_libs})
  message(STATUS "wasi-nn-llama: CUDA build, linking ${_cuda_libs}")
  set(WASI_NN_LLAMA_CUDA ON)
endif()

file(STRINGS "${LLAMA_CPP_PREFIX}/commit" LLAMA_CPP_COMMIT LIMIT_COUNT 1)
file(STRINGS "${LLAMA_CPP_PREFIX}/build-number" LLAMA_CPP_BUILD_NUMBER LIMIT_COUNT 1)
message(STATUS "llama.cpp ${LLAMA_CPP_COMMIT} (build ${LLAMA_CPP_BUILD_NUMBER}) at ${LLAMA_CPP_PREFIX}")
