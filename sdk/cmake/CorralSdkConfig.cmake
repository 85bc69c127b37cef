# find_package(CorralSdk): the Corral plugin SDK, installed.
#   Corral::sdk                 the headers (C++20, no third-party dependencies)
#   corral_sdk_plugin(NAME <category>_<name> SOURCES ...)
#                               builds libcorral_<category>_<name>.so, the file name corrald
#                               looks for in its plugin_dir (category: storage, client,
#                               peer or auth), with only the entry symbol exported.
get_filename_component(_corral_sdk_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET Corral::sdk)
  add_library(Corral::sdk INTERFACE IMPORTED)
  set_target_properties(Corral::sdk PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_corral_sdk_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_20)
endif()

function(corral_sdk_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_library(corral_${P_NAME} MODULE ${P_SOURCES})
  target_link_libraries(corral_${P_NAME} PRIVATE Corral::sdk ${P_LIBS})
  set_target_properties(corral_${P_NAME} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()
