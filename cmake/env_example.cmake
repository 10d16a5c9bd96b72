# Writes soldr.env.example from the binary itself (`soldr serve --env-example`),
# so the example lists exactly the settings and defaults of the code.
# Usage: cmake -DSOLDR=path/to/soldr -DOUT=path/to/soldr.env.example -P env_example.cmake
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=SOLDR_DATA_DIR ${SOLDR} serve --env-example
                OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "soldr serve --env-example failed (${rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
