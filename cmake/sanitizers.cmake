# Instruments our code only: llama.cpp stays an uninstrumented static
# library, which ASan, UBSan and TSan all accept.
if(WASI_NN_LLAMA_SANITIZE)
  string(REPLACE ";" "," _san "${WASI_NN_LLAMA_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
  message(STATUS "wasi-nn-llama: sanitizers ${_san}")
endif()
