# iris_fuzz(NAME SOURCE DEPS ... CORPUS DIR [INPUT_TIMEOUT S]): the fuzz harness SOURCE (a
# *_fuzz.cc that defines LLVMFuzzerTestOneInput) as the executable iris_NAME_fuzz, seeded from
# tests/data/fuzz/DIR/. One input running longer than INPUT_TIMEOUT seconds (default 30) is a
# failure (a hang).
#
# - With IRIS_BUILD_FUZZ (Clang) it is a libFuzzer binary (tests/data/fuzz/README.md).
# - Otherwise, when tests are built, it is linked with tests/fuzz/fuzz_driver.cc, a small
#   mutation driver without coverage feedback.
# Either way, with tests built, ctest runs it as fuzz_NAME for IRIS_FUZZ_SECONDS (label "fuzz";
# the release test preset leaves them to asan-ubsan, where a sanitizer reports what they find):
# every seed, then mutants until the time is up. Any crash, sanitizer report, failed check or
# hang fails the test. To fuzz longer, configure with -DIRIS_FUZZ_SECONDS=300 or run the binary
# itself (tests/data/fuzz/README.md).
set(IRIS_FUZZ_SECONDS 6 CACHE STRING "Seconds each fuzz_* ctest test runs its harness")

if(IRIS_BUILD_TESTS AND NOT IRIS_BUILD_FUZZ)
  add_library(iris_fuzz_driver OBJECT ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_driver.cc)
  target_compile_options(iris_fuzz_driver PRIVATE ${IRIS_WARNINGS})
endif()

function(iris_fuzz name source)
  cmake_parse_arguments(ARG "" "CORPUS;INPUT_TIMEOUT" "DEPS" ${ARGN})
  if(NOT ARG_INPUT_TIMEOUT)
    set(ARG_INPUT_TIMEOUT 30)
  endif()
  if(NOT IRIS_BUILD_FUZZ AND NOT IRIS_BUILD_TESTS)
    return()
  endif()
  set(target iris_${name}_fuzz)
  set(corpus ${PROJECT_SOURCE_DIR}/tests/data/fuzz/${ARG_CORPUS})
  add_executable(${target} ${source})
  target_compile_options(${target} PRIVATE ${IRIS_WARNINGS})
  target_link_libraries(${target} PRIVATE ${ARG_DEPS})
  target_compile_definitions(${target} PRIVATE
    IRIS_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  if(IRIS_BUILD_FUZZ)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    # libFuzzer adds what it finds to its first corpus folder: a scratch one, never the seeds.
    set(scratch ${CMAKE_BINARY_DIR}/fuzz_corpus/${name})
    file(MAKE_DIRECTORY ${scratch})
    set(command $<TARGET_FILE:${target}> -max_total_time=${IRIS_FUZZ_SECONDS}
        -timeout=${ARG_INPUT_TIMEOUT}
        -rss_limit_mb=4096 -print_final_stats=1 ${scratch} ${corpus})
  else()
    target_link_libraries(${target} PRIVATE iris_fuzz_driver)
    set(command $<TARGET_FILE:${target}> --seconds ${IRIS_FUZZ_SECONDS}
        --timeout ${ARG_INPUT_TIMEOUT} ${corpus})
  endif()
  if(IRIS_BUILD_TESTS)
    add_test(NAME fuzz_${name} COMMAND ${command})
    # Room for one input that runs just short of INPUT_TIMEOUT, and for slow sanitizer startup.
    math(EXPR timeout "${IRIS_FUZZ_SECONDS} + ${ARG_INPUT_TIMEOUT} + 60")
    set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT ${timeout})
  endif()
endfunction()
