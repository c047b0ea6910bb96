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
  set_tests_properties(tools.mkmodel PROPERTIES LABELS integration TIMEOUT 900)
endif()

add_test(NAME tools.cli_run
  COMMAND "$<TARGET_FILE:wasi-nn-llama>" run -q -m "${WNL_MODELS_DIR}/stories260K.gguf" -p "Once upon a time"
          --config "{\"temp\":0,\"max_tokens\":32,\"logging\":{\"level\":\"warn\"}}")
set_tests_properties(tools.cli_run PROPERTIES LABELS integration
  PASS_REGULAR_EXPRESSION "there was a little girl named Lily. She loved to play outside in the park. One day, she saw")
