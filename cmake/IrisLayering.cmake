# The layering check's input: once the top-level CMakeLists.txt has been read, every target
# of the build (modules, test and fuzz binaries, executables) is written to
# ${CMAKE_BINARY_DIR}/layering_graph.cmake with its direct link dependencies, its sources and,
# for an iris_module, its folder. cmake/CheckLayering.cmake reads that file, so the check
# always sees the dependency graph the build itself links with.
#
# Include this file from the top-level CMakeLists.txt, after cmake/IrisModule.cmake.

function(_iris_layering_collect dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _iris_layering_collect(${sub} sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

function(_iris_layering_write)
  _iris_layering_collect(${CMAKE_SOURCE_DIR} targets)
  set(text "# Written by cmake/IrisLayering.cmake at configure time; read by CheckLayering.cmake.\n")
  string(APPEND text "set(IRIS_LAYERING_ROOT \"${PROJECT_SOURCE_DIR}\")\n")
  string(APPEND text "set(IRIS_LAYERING_BINARY_DIR \"${CMAKE_BINARY_DIR}\")\n")
  set(names "")
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "UTILITY" OR type STREQUAL "GLOBAL_TARGET")
      continue()
    endif()
    list(APPEND names ${t})
    # Direct dependencies; target_link_libraries called from another folder wraps names in
    # ::@(directory-id) markers, and PRIVATE dependencies of a static library appear as
    # $<LINK_ONLY:name> in its interface.
    set(deps "")
    foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_property(libs TARGET ${t} PROPERTY ${prop})
      foreach(lib IN LISTS libs)
        string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" lib "${lib}")
        if(NOT lib MATCHES "^::@" AND NOT lib MATCHES "\\$<")
          list(APPEND deps ${lib})
        endif()
      endforeach()
    endforeach()
    list(REMOVE_DUPLICATES deps)
    set(sources "")
    get_property(srcs TARGET ${t} PROPERTY SOURCES)
    get_property(src_dir TARGET ${t} PROPERTY SOURCE_DIR)
    foreach(s IN LISTS srcs)
      if(NOT s MATCHES "\\$<")
        cmake_path(ABSOLUTE_PATH s BASE_DIRECTORY ${src_dir} NORMALIZE)
        list(APPEND sources ${s})
      endif()
    endforeach()
    get_property(module_dir TARGET ${t} PROPERTY IRIS_MODULE_DIR)
    get_property(exclude_dir TARGET ${t} PROPERTY IRIS_MODULE_EXCLUDE_DIR)
    string(APPEND text "set(IRIS_LAYERING_${t}_DEPS \"${deps}\")\n")
    string(APPEND text "set(IRIS_LAYERING_${t}_SOURCES \"${sources}\")\n")
    string(APPEND text "set(IRIS_LAYERING_${t}_DIR \"${module_dir}\")\n")
    string(APPEND text "set(IRIS_LAYERING_${t}_EXCLUDE_DIR \"${exclude_dir}\")\n")
  endforeach()
  string(APPEND text "set(IRIS_LAYERING_TARGETS \"${names}\")\n")
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/layering_graph.cmake CONTENT "${text}" @ONLY)
endfunction()

# Runs when the top-level directory has been processed, i.e. after every add_subdirectory.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL _iris_layering_write)
