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
# The shared library's directory is recorded in the programs pkg-config links (RUNPATH), so a
# program built against any prefix runs without LD_LIBRARY_PATH or ldconfig.
set(MIOR_STATIC_ARCHIVE libmior.a)
if(WIN32)
  set(MIOR_PC_RPATH "")
  set(MIOR_STATIC_ARCHIVE libmior_static.a) # libmior.a is mior.dll's import library there
else()
  set(MIOR_PC_RPATH "-Wl,-rpath,\${libdir} ")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/mior.pc.in ${PROJECT_BINARY_DIR}/mior.pc @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/mior-static.pc.in ${PROJECT_BINARY_DIR}/mior-static.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mior.pc ${PROJECT_BINARY_DIR}/mior-static.pc
  DESTINATION ${MIOR_PC_DIR})

# Installed into a directory the dynamic loader searches (/usr/local/lib, /usr/lib...) by root,
# the loader's cache is refreshed, as a distribution package's postinst does: otherwise a program
# linked with -lmior fails with "libmior.so.0: cannot open shared object file" until someone
# runs ldconfig.  Not for DESTDIR staging or other prefixes (those get RUNPATH from pkg-config,
# and CMake consumers from CMake).  -DMIOR_INSTALL_LDCONFIG=OFF turns it off.
option(MIOR_INSTALL_LDCONFIG "Run ldconfig after installing into a system library directory" ON)
if(MIOR_INSTALL_LDCONFIG AND NOT WIN32)
  install(CODE "set(MIOR_LDCONFIG_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")")
  install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/install_ldconfig.cmake)
endif()
