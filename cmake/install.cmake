# `cmake --install` writes the public headers, the static libraries of every area and a CMake
# package: another project writes find_package(sightline) and links sightline::sightline (all
# areas) or one area, e.g. sightline::crf. Included by the top-level CMakeLists.txt once the
# targets exist.
include(CMakePackageConfigHelpers)

foreach(target ${SIGHTLINE_AREAS})
  string(REPLACE "sightline_" "" area ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${area})
  add_library(sightline::${area} ALIAS ${target})
endforeach()
add_library(sightline::sightline ALIAS sightline)

set(SIGHTLINE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sightline)
install(TARGETS sightline ${SIGHTLINE_AREAS} EXPORT sightlineTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/sightline DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT sightlineTargets NAMESPACE sightline:: DESTINATION ${SIGHTLINE_CMAKE_DIR})

configure_package_config_file(cmake/sightlineConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/sightlineConfig.cmake
                              INSTALL_DESTINATION ${SIGHTLINE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/sightlineConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sightlineConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/sightlineConfigVersion.cmake
        DESTINATION ${SIGHTLINE_CMAKE_DIR})
