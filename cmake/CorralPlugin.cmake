# corral_plugin(NAME <target> SOURCES ... [LIBS ...])
# Builds a loadable plugin (MODULE library) named lib<target>.so into the plugin folder,
# with hidden visibility so only the entry symbol is exported.
function(corral_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_library(${P_NAME} MODULE ${P_SOURCES})
  target_link_libraries(${P_NAME} PRIVATE corral_sdk ${P_LIBS})
  set_target_properties(${P_NAME} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CORRAL_PLUGIN_OUT}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  install(TARGETS ${P_NAME} LIBRARY DESTINATION lib/corral/plugins)
endfunction()
