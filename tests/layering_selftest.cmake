# The layering check's self-test (ctest: layering_selftest): configures the fixture project
# tests/data/layering (the real IrisModule.cmake and IrisLayering.cmake) into WORK, runs
# cmake/CheckLayering.cmake on its graph, and expects exactly the three planted violations.
#
#   cmake -DROOT=<repo> -DWORK=<scratch dir> [-DGENERATOR=Ninja] -P tests/layering_selftest.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT GENERATOR)
  set(GENERATOR Ninja)
endif()
file(REMOVE_RECURSE "${WORK}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -S "${ROOT}/tests/data/layering" -B "${WORK}" -G "${GENERATOR}"
          "-DIRIS_ROOT=${ROOT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring tests/data/layering failed:\n${out}")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} "-DGRAPH=${WORK}/layering_graph.cmake"
          -P "${ROOT}/cmake/CheckLayering.cmake"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the check passed a tree with planted violations")
endif()
set(expected
    "src/low/low.cc: includes \"app/app.h\" of fx_app, which fx_low does not depend on"
    "src/low/upward.h: includes \"high/high.h\" of fx_high, which fx_low does not depend on"
    "src/mid/mid.cc: includes \"mid/sub/sub.h\" of fx_sub, which fx_mid does not depend on"
    "layering: 3 include(s) cross the module graph")
foreach(line IN LISTS expected)
  string(FIND "${out}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "missing from the check's output: ${line}")
  endif()
endforeach()
message("layering_selftest: the check found exactly the planted violations")
