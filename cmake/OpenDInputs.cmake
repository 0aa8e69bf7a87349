include_guard(GLOBAL)

# Defaults come from the environment (OPEND_BRAND, OPEND_SDK, OPEND_PROTOBUF), so the one variable
# works for presets, `pip wheel .` and Conan alike.
set(OPEND_BRAND "$ENV{OPEND_BRAND}" CACHE STRING "brand, as build.py's --brand (when OPEND_PROTO_DIR is not given; empty: detected from the SDK, the driver's default without one)")
set(OPEND_SDK "$ENV{OPEND_SDK}" CACHE FILEPATH "SDK folder or archive (when OPEND_PROTO_DIR is not given; empty: PyPI's open inputs)")
set(OPEND_PROTOBUF "$ENV{OPEND_PROTOBUF}" CACHE STRING "which protobuf, as build.py's --protobuf: a version (3.5.1, 3.21.12), system, an installed prefix, or a source folder or archive")

# One implementation of input handling (pins, sha256 checks, safe unpacking) lives in Python:
# `python build.py inputs` prepares them and prints the cache entries as a CMake script.
function(opend_resolve_inputs)
  if(OPEND_PROTO_DIR)
    return()
  endif()
  find_package(Python3 3.9 REQUIRED COMPONENTS Interpreter)
  set(_args inputs)
  if(OPEND_SDK)
    list(APPEND _args --sdk "${OPEND_SDK}")
  endif()
  if(OPEND_BRAND)
    list(APPEND _args --brand "${OPEND_BRAND}")
  endif()
  if(OPEND_PROTOBUF)
    list(APPEND _args --protobuf "${OPEND_PROTOBUF}")
  endif()
  # What the Bin folder depends on, so the driver names it (the rule lives in its platform modules).
  if(CMAKE_BUILD_TYPE)
    list(APPEND _args --build-type "${CMAKE_BUILD_TYPE}")
  endif()
  if(MINGW)  # Windows from MinGW-w64 (on Linux, too): its own Bin folder, without MSVC's MD/MT
    list(APPEND _args --os windows --compiler mingw)
  elseif(MSVC)
    set(_runtime MD)
    if(DEFINED CMAKE_MSVC_RUNTIME_LIBRARY AND NOT CMAKE_MSVC_RUNTIME_LIBRARY MATCHES "DLL")
      set(_runtime MT)
    endif()
    set(_arch x64)
    if(CMAKE_SIZEOF_VOID_P EQUAL 4)
      set(_arch x86)
    endif()
    list(APPEND _args --arch ${_arch} --runtime ${_runtime})
  endif()
  message(STATUS "opend-build: preparing inputs (${_args})")
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/build.py" ${_args}
    OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "opend-build could not prepare the inputs:\n${_err}")
  endif()
  file(WRITE "${CMAKE_BINARY_DIR}/opend-inputs.cmake" "${_out}")
  include("${CMAKE_BINARY_DIR}/opend-inputs.cmake")
  # For opend_describe_install, on this configure and every later one (which keep these inputs).
  set(OPEND_INPUTS_ARGS "${_args}" CACHE INTERNAL "the arguments `build.py inputs` was run with")
  set(OPEND_PYTHON "${Python3_EXECUTABLE}" CACHE INTERNAL "the Python that ran `build.py inputs`")
  # The toolchain facts the manifest records, read from CMake's File API as the driver reads them
  # (opend_build/file_api.py: the same client and requests). CMake reads queries before it
  # configures, so this first configure leaves it unanswered: cmake/OpenDDescribe.cmake configures
  # once more before it reads the reply.
  file(WRITE "${CMAKE_BINARY_DIR}/.cmake/api/v1/query/client-opend-build/query.json"
    [=[{"requests": [{"kind": "codemodel", "version": 2}, {"kind": "toolchains", "version": 1}]}]=])
endfunction()

# After everything else is installed: the install tree's build-manifest.json and SBOMs, as a
# build.py output has them (cmake/OpenDDescribe.cmake runs the driver's own code); a wheel's SBOMs
# also in its .dist-info/sboms/ (PEP 770; SKBUILD_METADATA_DIR is scikit-build-core's .dist-info).
function(opend_describe_install)
  if(NOT OPEND_INPUTS_ARGS)
    return()  # configured by build.py, which writes them itself
  endif()
  set(_inputs "")
  foreach(_arg IN LISTS OPEND_INPUTS_ARGS)
    string(APPEND _inputs " [==[${_arg}]==]")
  endforeach()
  install(CODE "set(_opend_python [==[${OPEND_PYTHON}]==])
set(_opend_build_dir [==[${CMAKE_BINARY_DIR}]==])
set(_opend_metadata_dir [==[${SKBUILD_METADATA_DIR}]==])
set(_opend_platlib_dir [==[${SKBUILD_PLATLIB_DIR}]==])
set(_opend_inputs ${_inputs})")
  install(SCRIPT "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/OpenDDescribe.cmake")
endfunction()
