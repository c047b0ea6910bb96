# `cmake --install` rules (docs/install.md). Installs, under the prefix:
#   include/                 wasi_nn_llamacpp.h, wasi_nn_backend.h
#   lib/                     libwasi_nn_llamacpp.so, libwasi_nn_backend.so
#                            (+ their .so.0 and .so.0.1.0 versions)
#   lib/cmake/wasi_nn_llama/ the CMake package: find_package(wasi_nn_llama)
#                            gives wasi_nn_llama::llamacpp and ::backend
#   lib/pkgconfig/           wasi_nn_llamacpp.pc, wasi_nn_backend.pc
#   bin/                     wasi-nn-llama, wasi-nn-llama-mkmodel
# Everything installed is relocatable: the package and .pc files locate the
# prefix from their own path, and no file names a build or source directory.
# Included at the end of the top-level CMakeLists.txt, once every target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(WNL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/${PROJECT_NAME}"
  CACHE STRING "Where the CMake package files are installed, relative to the prefix")
set(WNL_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  CACHE STRING "Where the pkg-config files are installed, relative to the prefix")
mark_as_advanced(WNL_INSTALL_CMAKEDIR WNL_INSTALL_PKGCONFIGDIR)

# ---- the two libraries -------------------------------------------------------
# WAMR dlopen()s the bare name "libwasi_nn_llamacpp.so": the unversioned name
# is installed too (it is the link "namelink"), in the same component, so an
# install always contains it. SOVERSION follows the major version and changes
# only when the C ABI in include/ changes incompatibly.
foreach(_lib IN ITEMS wasi_nn_llamacpp wasi_nn_backend)
  set_target_properties(${_lib} PROPERTIES
    VERSION "${PROJECT_VERSION}"
    SOVERSION "${PROJECT_VERSION_MAJOR}")
  # A consumer includes the header of the one ABI it links. Both headers live
  # in the same directory, so both targets carry it.
  target_include_directories(${_lib} INTERFACE
    "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>"
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
endforeach()
set_target_properties(wasi_nn_llamacpp PROPERTIES EXPORT_NAME llamacpp)
set_target_properties(wasi_nn_backend PROPERTIES EXPORT_NAME backend)
# The same names for projects that add this one with add_subdirectory().
add_library(${PROJECT_NAME}::llamacpp ALIAS wasi_nn_llamacpp)
add_library(${PROJECT_NAME}::backend ALIAS wasi_nn_backend)

install(TARGETS wasi_nn_llamacpp wasi_nn_backend
  EXPORT wasi_nn_llamaTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
install(FILES
  "${PROJECT_SOURCE_DIR}/include/wasi_nn_llamacpp.h"
  "${PROJECT_SOURCE_DIR}/include/wasi_nn_backend.h"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT development)

# ---- the programs ------------------------------------------------------------
# The CLI dlopen()s <bin>/../lib/libwasi_nn_llamacpp.so first; its RUNPATH
# also points at the installed libdir, so that its last resort, the bare
# name, finds the installed library when CMAKE_INSTALL_LIBDIR is not "lib"
# (lib64, lib/<multiarch>).
set(_wnl_programs wasi-nn-llama)
if(TARGET wasi-nn-llama-mkmodel)
  list(APPEND _wnl_programs wasi-nn-llama-mkmodel)
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_wnl_rpath "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _wnl_bin_to_lib "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(_wnl_rpath "$ORIGIN/${_wnl_bin_to_lib}")
endif()
# Built with that RUNPATH already (in the build tree it names <build>/lib,
# which holds nothing): were the RUNPATH rewritten at install time, CMake
# would pad the build tree's with ':', and an empty entry makes the dynamic
# loader search the current directory.
set_target_properties(wasi-nn-llama PROPERTIES
  INSTALL_RPATH "${_wnl_rpath}"
  BUILD_WITH_INSTALL_RPATH ON)
install(TARGETS ${_wnl_programs}
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)

# ---- CMake package -----------------------------------------------------------
install(EXPORT wasi_nn_llamaTargets
  NAMESPACE ${PROJECT_NAME}::
  DESTINATION "${WNL_INSTALL_CMAKEDIR}"
  COMPONENT development)
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/wasi_nn_llamaConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/install/wasi_nn_llamaConfig.cmake"
  INSTALL_DESTINATION "${WNL_INSTALL_CMAKEDIR}"
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
# Same major version = same SOVERSION = compatible C ABI.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/install/wasi_nn_llamaConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/install/wasi_nn_llamaConfig.cmake"
  "${PROJECT_BINARY_DIR}/install/wasi_nn_llamaConfigVersion.cmake"
  DESTINATION "${WNL_INSTALL_CMAKEDIR}" COMPONENT development)

# ---- pkg-config: one file per ABI, as a consumer links exactly one ------------
# prefix is derived from ${pcfiledir}, the directory of the .pc file, so the
# installed tree can be moved (or installed with `cmake --install --prefix`).
function(_wnl_pc_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${WNL_INSTALL_PKGCONFIGDIR}")
  set(WNL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _wnl_pc_to_prefix
    "${CMAKE_INSTALL_PREFIX}/${WNL_INSTALL_PKGCONFIGDIR}" "${CMAKE_INSTALL_PREFIX}")
  string(REGEX REPLACE "/$" "" _wnl_pc_to_prefix "${_wnl_pc_to_prefix}")
  set(WNL_PC_PREFIX "\${pcfiledir}/${_wnl_pc_to_prefix}")
endif()
_wnl_pc_dir(WNL_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
_wnl_pc_dir(WNL_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

foreach(_lib IN ITEMS wasi_nn_llamacpp wasi_nn_backend)
  set(WNL_PC_NAME "${_lib}")
  set(WNL_PC_LIB "${_lib}")
  if(_lib STREQUAL "wasi_nn_llamacpp")
    set(WNL_PC_HEADER "wasi_nn_llamacpp.h")
    set(WNL_PC_DESCRIPTION "wasi-nn-llama: llama.cpp backend with the WAMR >= 2.4 wasi-nn ABI")
  else()
    set(WNL_PC_HEADER "wasi_nn_backend.h")
    set(WNL_PC_DESCRIPTION "wasi-nn-llama: llama.cpp backend with the legacy wasi_nn_backend ABI")
  endif()
  configure_file("${CMAKE_CURRENT_LIST_DIR}/wasi_nn_llama.pc.in"
    "${PROJECT_BINARY_DIR}/install/${_lib}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/install/${_lib}.pc"
    DESTINATION "${WNL_INSTALL_PKGCONFIGDIR}" COMPONENT development)
endforeach()
