# corral_test(NAME <name> SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s])
# One GoogleTest binary registered with ctest under the given labels
# (unit, plugins, e2e, ...), so `ctest -L unit` is the fast inner loop.
function(corral_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE GTest::gtest GTest::gtest_main ${T_LIBS})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CORRAL_BIN_DIR=${CORRAL_OUT}/bin;CORRAL_PLUGIN_DIR=${CORRAL_PLUGIN_OUT};CORRAL_SOURCE_DIR=${PROJECT_SOURCE_DIR};CORRAL_BUILD_DIR=${CMAKE_BINARY_DIR}")
endfunction()
