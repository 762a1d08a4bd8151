# Run at install time (cmake/install.cmake): refresh the dynamic loader's cache when libmior.so
# went into a directory the loader searches, as a distribution package's postinst would.
# MIOR_LDCONFIG_LIBDIR is CMAKE_INSTALL_LIBDIR (relative to the prefix, or absolute).
if(NOT "$ENV{DESTDIR}" STREQUAL "")
  return() # staging for a package: the package's own scripts run ldconfig
endif()
if(IS_ABSOLUTE "${MIOR_LDCONFIG_LIBDIR}")
  set(_libdir "${MIOR_LDCONFIG_LIBDIR}")
else()
  set(_libdir "${CMAKE_INSTALL_PREFIX}/${MIOR_LDCONFIG_LIBDIR}")
endif()
get_filename_component(_libdir "${_libdir}" REALPATH)
find_program(_ldconfig ldconfig PATHS /sbin /usr/sbin)
if(NOT _ldconfig)
  return()
endif()
# The directories the loader searches, as ldconfig itself lists them ("DIR: (from ...)").
execute_process(COMMAND ${_ldconfig} -v -N OUTPUT_VARIABLE _out ERROR_QUIET)
string(FIND "\n${_out}" "\n${_libdir}:" _at)
if(_at LESS 0)
  return() # another prefix: programs find libmior.so through RUNPATH (pkg-config, CMake)
endif()
execute_process(COMMAND ${_ldconfig} RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
if(_rc EQUAL 0)
  message(STATUS "Ran ldconfig: ${_libdir} is searched by the dynamic loader")
else()
  message(WARNING "ldconfig failed (not root?): run `sudo ldconfig` before running programs "
                  "linked with libmior.so from ${_libdir}")
endif()
