# corral_add_subdirs(a b c): add each listed subdirectory that has a CMakeLists.txt.
# Lets parts of the tree grow independently without breaking configuration.
macro(corral_add_subdirs)
  foreach(_d ${ARGN})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_d}/CMakeLists.txt)
      add_subdirectory(${_d})
    endif()
  endforeach()
endmacro()
