# The layering check (ctest: layering): fails when a file includes a header of the project
# ("gateway/http/server.h", resolved under src/ or beside the file) from a module that the
# file's CMake target does not link, directly or through other modules.
#
#   cmake -DGRAPH=build/<preset>/layering_graph.cmake -P cmake/CheckLayering.cmake
#
# GRAPH is written at configure time by cmake/IrisLayering.cmake from the targets themselves
# (iris_module and iris_fuzz calls, add_executable + target_link_libraries), so the check reads
# the graph the build links with, never a copy of it. Who a file answers to:
# - a .cc compiled into targets: each of those targets (a module's library, its NAME_test
#   binary, an iris_fuzz harness with its DEPS, the iris executable, ...);
# - a header (or a .cc no target compiles): the iris_module whose folder holds it (the deepest
#   one; EXCLUDE_DIR leaves a subfolder to its own module), or else the targets with sources
#   in its folder (src/cli/commands.h: iris);
# - a fuzz harness's support header (*_fuzz.h): the fuzz harnesses of its folder.
# An included header belongs to its module, or to the targets with sources in its folder.
cmake_minimum_required(VERSION 3.25)

if(NOT GRAPH OR NOT EXISTS "${GRAPH}")
  message(FATAL_ERROR
          "usage: cmake -DGRAPH=BUILD_DIR/layering_graph.cmake -P cmake/CheckLayering.cmake "
          "(GRAPH '${GRAPH}' does not exist: configure the build first)")
endif()
include("${GRAPH}")
set(root "${IRIS_LAYERING_ROOT}")
set(targets ${IRIS_LAYERING_TARGETS})

function(rel path out)
  cmake_path(RELATIVE_PATH path BASE_DIRECTORY "${root}")
  set(${out} "${path}" PARENT_SCOPE)
endfunction()

# Everything each target links, itself included.
foreach(t IN LISTS targets)
  set(closure ${t})
  set(queue ${t})
  while(queue)
    list(POP_FRONT queue cur)
    foreach(d IN LISTS IRIS_LAYERING_${cur}_DEPS)
      if(d IN_LIST targets AND NOT d IN_LIST closure)
        list(APPEND closure ${d})
        list(APPEND queue ${d})
      endif()
    endforeach()
  endwhile()
  set(closure_${t} ${closure})
endforeach()

# Modules and their folders; which targets compile each source, and which have sources in
# each folder (keys are hashes: paths may hold characters a variable name cannot).
set(modules "")
set(scan_dirs "")
set(flat_dirs "")
foreach(t IN LISTS targets)
  if(IRIS_LAYERING_${t}_DIR)
    list(APPEND modules ${t})
    list(APPEND scan_dirs "${IRIS_LAYERING_${t}_DIR}")
  endif()
  foreach(s IN LISTS IRIS_LAYERING_${t}_SOURCES)
    cmake_path(IS_PREFIX IRIS_LAYERING_BINARY_DIR "${s}" generated)
    if(generated)
      continue()
    endif()
    string(MD5 key "${s}")
    list(APPEND src_targets_${key} ${t})
    cmake_path(GET s PARENT_PATH dir)
    string(MD5 key "${dir}")
    if(NOT t IN_LIST dir_targets_${key})
      list(APPEND dir_targets_${key} ${t})
    endif()
    if(s MATCHES "_fuzz\\.cc$" AND NOT t IN_LIST fuzz_targets_${key})
      list(APPEND fuzz_targets_${key} ${t})
    endif()
    list(APPEND flat_dirs "${dir}")
  endforeach()
endforeach()
if(NOT modules)
  message(FATAL_ERROR "layering: ${GRAPH} names no iris_module")
endif()

# The module that owns `path` (the deepest folder holding it), or "".
function(module_of path out)
  set(best "")
  set(best_len 0)
  foreach(m IN LISTS modules)
    set(dir "${IRIS_LAYERING_${m}_DIR}")
    cmake_path(IS_PREFIX dir "${path}" inside)
    if(inside AND IRIS_LAYERING_${m}_EXCLUDE_DIR)
      cmake_path(APPEND dir "${IRIS_LAYERING_${m}_EXCLUDE_DIR}" OUTPUT_VARIABLE excluded)
      cmake_path(IS_PREFIX excluded "${path}" in_excluded)
      if(in_excluded)
        set(inside FALSE)
      endif()
    endif()
    string(LENGTH "${dir}" len)
    if(inside AND len GREATER best_len)
      set(best ${m})
      set(best_len ${len})
    endif()
  endforeach()
  set(${out} "${best}" PARENT_SCOPE)
endfunction()

# The targets a file answers to (see the top of this file).
function(owners_of path out)
  module_of("${path}" m)
  if(m)
    set(${out} ${m} PARENT_SCOPE)
  else()
    cmake_path(GET path PARENT_PATH dir)
    string(MD5 key "${dir}")
    set(${out} ${dir_targets_${key}} PARENT_SCOPE)
  endif()
endfunction()

set(files "")
foreach(dir IN LISTS scan_dirs)
  file(GLOB_RECURSE found LIST_DIRECTORIES false "${dir}/*.cc" "${dir}/*.h")
  list(APPEND files ${found})
endforeach()
list(REMOVE_DUPLICATES flat_dirs)
foreach(dir IN LISTS flat_dirs)
  file(GLOB found LIST_DIRECTORIES false "${dir}/*.cc" "${dir}/*.h")
  list(APPEND files ${found})
endforeach()
list(REMOVE_DUPLICATES files)
list(SORT files)

set(violations 0)
set(checked_includes 0)
foreach(f IN LISTS files)
  cmake_path(IS_PREFIX IRIS_LAYERING_BINARY_DIR "${f}" generated)
  if(generated)
    continue()
  endif()
  rel("${f}" f_rel)
  cmake_path(GET f PARENT_PATH f_dir)
  string(MD5 f_key "${f}")
  string(MD5 dir_key "${f_dir}")
  if(f MATCHES "_fuzz\\.h$" AND fuzz_targets_${dir_key})
    set(consumers ${fuzz_targets_${dir_key}})
  elseif(src_targets_${f_key})
    set(consumers ${src_targets_${f_key}})
  else()
    owners_of("${f}" consumers)
  endif()
  if(NOT consumers)
    message("${f_rel}: belongs to no target and no iris_module (CMakeLists.txt)")
    math(EXPR violations "${violations} + 1")
    continue()
  endif()
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]+\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" inc "${line}")
    # Quoted includes resolve beside the file first, then under src/ (the only include
    # folder); anything else (<system>, third-party, generated) is not ours to check.
    if(EXISTS "${f_dir}/${inc}")
      cmake_path(ABSOLUTE_PATH inc BASE_DIRECTORY "${f_dir}" NORMALIZE OUTPUT_VARIABLE target_file)
    elseif(EXISTS "${root}/src/${inc}")
      cmake_path(ABSOLUTE_PATH inc BASE_DIRECTORY "${root}/src" NORMALIZE
                 OUTPUT_VARIABLE target_file)
    else()
      continue()
    endif()
    math(EXPR checked_includes "${checked_includes} + 1")
    owners_of("${target_file}" providers)
    if(NOT providers)
      rel("${target_file}" inc_rel)
      message("${f_rel}: includes \"${inc}\", but ${inc_rel} belongs to no module "
              "(add its folder to an iris_module in CMakeLists.txt)")
      math(EXPR violations "${violations} + 1")
      continue()
    endif()
    foreach(c IN LISTS consumers)
      set(ok FALSE)
      foreach(p IN LISTS providers)
        if(p IN_LIST closure_${c})
          set(ok TRUE)
        endif()
      endforeach()
      if(NOT ok)
        string(REPLACE ";" " or " providers_text "${providers}")
        message("${f_rel}: includes \"${inc}\" of ${providers_text}, which ${c} does not "
                "depend on")
        math(EXPR violations "${violations} + 1")
      endif()
    endforeach()
  endforeach()
endforeach()

list(LENGTH files num_files)
list(LENGTH targets num_targets)
if(violations GREATER 0)
  message("layering: ${violations} include(s) cross the module graph. Include only from the "
          "modules a target links (iris_module DEPS, iris_fuzz DEPS, target_link_libraries in "
          "CMakeLists.txt), or move the code to the layer it belongs to (docs/architecture.md, "
          "Layers).")
  message(FATAL_ERROR "layering check failed")
endif()
message("layering: ${num_files} files, ${checked_includes} project includes, ${num_targets} "
        "targets: every include follows the module graph")
