# iris_module(NAME DIR DEPS ...): one static library from DIR's *.cc (tests and benches
# excluded), plus a test binary NAME_test from DIR's *_test.cc when there are any, whose ctest
# tests carry the label NAME.
# EXCLUDE_DIR names one subfolder of DIR that is a module of its own.
function(iris_module name dir)
  cmake_parse_arguments(ARG "" "EXCLUDE_DIR" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.cc ${dir}/*/*.cc)
  list(FILTER srcs EXCLUDE REGEX "_(test|bench|fuzz)\\.cc$")
  file(GLOB tests CONFIGURE_DEPENDS ${dir}/*_test.cc ${dir}/*/*_test.cc)
  if(ARG_EXCLUDE_DIR)
    list(FILTER srcs EXCLUDE REGEX "/${ARG_EXCLUDE_DIR}/")
    list(FILTER tests EXCLUDE REGEX "/${ARG_EXCLUDE_DIR}/")
  endif()
  if(srcs)
    add_library(${name} STATIC ${srcs})
    set(scope PUBLIC)
  else()
    add_library(${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  target_include_directories(${name} ${scope} ${PROJECT_SOURCE_DIR}/src)
  # For the layering check (cmake/IrisLayering.cmake): the files under DIR are this module's.
  cmake_path(ABSOLUTE_PATH dir BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} NORMALIZE
             OUTPUT_VARIABLE abs_dir)
  set_target_properties(${name} PROPERTIES IRIS_MODULE_DIR ${abs_dir}
                                           IRIS_MODULE_EXCLUDE_DIR "${ARG_EXCLUDE_DIR}")
  target_link_libraries(${name} ${scope} ${ARG_DEPS})
  if(srcs)
    target_compile_options(${name} PRIVATE ${IRIS_WARNINGS})
  endif()
  if(IRIS_BUILD_TESTS AND tests)
    add_executable(${name}_test ${tests})
    target_compile_options(${name}_test PRIVATE ${IRIS_WARNINGS})
    target_link_libraries(${name}_test PRIVATE ${name} GTest::gtest GTest::gtest_main)
    target_compile_definitions(${name}_test PRIVATE
      IRIS_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
    # Each test is labelled with its module, so a preset can run some modules' tests (tsan).
    gtest_discover_tests(${name}_test DISCOVERY_TIMEOUT 60
      PROPERTIES ENVIRONMENT "IRIS_TEST_DATA_DIR=${PROJECT_SOURCE_DIR}/tests/data"
                 LABELS ${name})
  endif()
endfunction()
