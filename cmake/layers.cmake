# The layers as libraries: product_layer() makes one static library of one
# folder, and lets it see only its own headers and those of the layers it
# uses (and, through them, the layers below those).
#
# How a wrong-way include fails: includes are written from the folder down
# ("store/store.h"), and no library has a source root on its include path.
# Each has a view instead, build/layers/<name>/, holding one entry, a link
# named after its folder to that folder. The view is the library's PUBLIC
# include directory, so it reaches exactly the layers that link it; a file of
# a lower layer that includes "service/env.h" finds no "service/" on its path
# and does not compile.
#
# A layer may use only layers declared before it (the table is bottom up),
# so the arrows cannot close a circle. Each call also records its row in
# PRODUCT_LAYER_TABLE, which tests/layers/check_includes.py reads to check
# every #include (headers that no file compiles included) against it.

set_property(GLOBAL PROPERTY PRODUCT_LAYER_TABLE "")
set_property(GLOBAL PROPERTY PRODUCT_LAYER_NAMES "")

# product_layer(NAME FOLDER [USES layer...] [LIBS target...] [EXCLUDE file...])
function(product_layer name folder)
  cmake_parse_arguments(L "" "" "USES;LIBS;EXCLUDE" ${ARGN})
  get_property(known GLOBAL PROPERTY PRODUCT_LAYER_NAMES)
  foreach(dep ${L_USES})
    if(NOT dep IN_LIST known)
      message(FATAL_ERROR "layer ${name} uses ${dep}, which is not declared below it")
    endif()
  endforeach()
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${folder}/*.c)
  foreach(ex ${L_EXCLUDE})
    list(REMOVE_ITEM srcs ${CMAKE_SOURCE_DIR}/${folder}/${ex})
  endforeach()
  get_filename_component(leaf ${folder} NAME)
  set(view ${CMAKE_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${view})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${folder} ${view}/${leaf} SYMBOLIC)
  add_library(product_${name} STATIC ${srcs})
  target_include_directories(product_${name} PUBLIC ${view})
  set(deps)
  foreach(dep ${L_USES})
    list(APPEND deps product_${dep})
  endforeach()
  target_link_libraries(product_${name} PUBLIC ${deps} ${L_LIBS})
  set_property(GLOBAL APPEND PROPERTY PRODUCT_LAYER_NAMES ${name})
  set(uses_proto 0)
  if(product_proto IN_LIST L_LIBS)
    set(uses_proto 1)
  endif()
  string(REPLACE ";" "," uses_csv "${L_USES}")
  set_property(GLOBAL APPEND PROPERTY PRODUCT_LAYER_TABLE "${name}|${folder}|${uses_csv}|${uses_proto}")
endfunction()

# A program's folder is checked like a layer's, with the layers it links.
function(product_program_folder name folder)
  cmake_parse_arguments(P "" "" "USES;LIBS" ${ARGN})
  set(uses_proto 0)
  if(product_proto IN_LIST P_LIBS)
    set(uses_proto 1)
  endif()
  string(REPLACE ";" "," uses_csv "${P_USES}")
  set_property(GLOBAL APPEND PROPERTY PRODUCT_LAYER_TABLE "${name}|${folder}|${uses_csv}|${uses_proto}")
endfunction()

# Writes the table (one "name|folder|uses,...|proto" row a line) for the check.
function(product_write_layer_table path)
  get_property(rows GLOBAL PROPERTY PRODUCT_LAYER_TABLE)
  string(REPLACE ";" "\n" text "${rows}")
  file(WRITE ${path} "${text}\n")
endfunction()
