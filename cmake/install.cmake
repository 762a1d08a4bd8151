# Install rules: headers, the shared and static library, a pkg-config file and a CMake package.
#
#   cmake --install <build> [--prefix DIR]
#
# Both the pkg-config file and the CMake package locate everything relative to where they are
# installed, so a tree installed with --prefix (or copied elsewhere) still works.

include(CMakePackageConfigHelpers)

set(MIOR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mior)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mior
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# Two export sets: the shared library needs only Threads from its consumer; the static one also
# needs liburing (found again through pkg-config by miorConfig.cmake).
install(TARGETS mior EXPORT miorTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS mior_static EXPORT miorStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT miorTargets NAMESPACE mior:: DESTINATION ${MIOR_CMAKE_DIR})
install(EXPORT miorStaticTargets NAMESPACE mior:: DESTINATION ${MIOR_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/miorConfig.cmake.in
  ${PROJECT_BINARY_DIR}/miorConfig.cmake
  INSTALL_DESTINATION ${MIOR_CMAKE_DIR})
# 0.x releases promise nothing across minor versions, so only the same minor version matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/miorConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/miorConfig.cmake ${PROJECT_BINARY_DIR}/miorConfigVersion.cmake
  DESTINATION ${MIOR_CMAKE_DIR})

# pkg-config: prefix is computed from ${pcfiledir} so that --prefix at install time is honoured.
set(MIOR_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${MIOR_PC_DIR}")
  set(MIOR_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH MIOR_PC_UP /mior-prefix/${MIOR_PC_DIR} /mior-prefix)
  string(REGEX REPLACE "/$" "" MIOR_PC_UP "${MIOR_PC_UP}")
  set(MIOR_PC_PREFIX "\${pcfiledir}/${MIOR_PC_UP}")
endif()
foreach(d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(MIOR_PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(MIOR_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/mior.pc.in ${PROJECT_BINARY_DIR}/mior.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mior.pc DESTINATION ${MIOR_PC_DIR})
