include_guard(GLOBAL)

# An installed protobuf, found the way a consumer's CMake finds it: protobuf's own CMake config
# (vcpkg, Homebrew, Conan's CMakeDeps, a CMake build of protobuf) on CMAKE_PREFIX_PATH, else
# CMake's FindProtobuf (Debian's libprotobuf-dev and protobuf-compiler ship no config). Defines
# opend_protobuf::libprotobuf and opend_protobuf::protoc, and refuses - before anything compiles -
# a protoc whose version is not the headers' (generated code must match its runtime: 27 and
# later check it exactly) or a protobuf other than the one the driver planned for. `versions` is
# every spelling of the planned version, the plan's first (29.0;29.0.0;5.29.0): the driver knows
# protobuf's numbering, this file only compares.
#
# Errors read "opend-build: protobuf: <what is wrong>; what to do: <hint>": the driver turns them
# into its one-line error with exit code 4.
macro(opend_find_installed_protobuf prefix versions out_version)
  set(_opend_names "${versions}")
  list(LENGTH _opend_names _opend_n)
  if(_opend_n EQUAL 0)
    message(FATAL_ERROR "opend-build: protobuf: OPEND_PROTOBUF_VERSIONS is empty: the driver sets it (build.py, or build.py inputs); what to do: build through build.py")
  endif()
  list(GET _opend_names 0 _opend_planned)
  if(NOT "${prefix}" STREQUAL "")
    list(PREPEND CMAKE_PREFIX_PATH "${prefix}")
  endif()
  find_package(Protobuf CONFIG QUIET)
  set(_opend_pb_how "protobuf's CMake config ${Protobuf_DIR}")
  if(NOT Protobuf_FOUND)
    find_package(Protobuf MODULE)
    set(_opend_pb_how "CMake's FindProtobuf")
  endif()
  if(NOT Protobuf_FOUND OR NOT TARGET protobuf::libprotobuf)
    message(FATAL_ERROR "opend-build: protobuf: no installed protobuf found (looked in '${prefix}' and CMake's default places); what to do: install it (Debian: libprotobuf-dev protobuf-compiler) or pass its prefix")
  endif()
  # The protoc: a cross build's OPEND_HOST_PROTOC (the package's own is the target's, which cannot
  # run here), else the package's own target, else the one beside its headers, else on PATH.
  if(OPEND_HOST_PROTOC)
    set(_opend_protoc "${OPEND_HOST_PROTOC}")
  elseif(TARGET protobuf::protoc)
    get_target_property(_opend_protoc protobuf::protoc IMPORTED_LOCATION)
    if(NOT _opend_protoc)
      get_target_property(_opend_imported_configs protobuf::protoc IMPORTED_CONFIGURATIONS)
      list(GET _opend_imported_configs 0 _opend_config)
      get_target_property(_opend_protoc protobuf::protoc IMPORTED_LOCATION_${_opend_config})
    endif()
  elseif(Protobuf_PROTOC_EXECUTABLE)
    set(_opend_protoc "${Protobuf_PROTOC_EXECUTABLE}")
  else()
    find_program(_opend_protoc NAMES protoc HINTS "${prefix}/bin" "${prefix}/tools/protobuf" NO_CACHE)
  endif()
  if(NOT _opend_protoc OR NOT EXISTS "${_opend_protoc}")
    message(FATAL_ERROR "opend-build: protobuf: protobuf ${Protobuf_VERSION} is installed (${_opend_pb_how}) but its protoc was not found; what to do: install it (Debian: protobuf-compiler) or put it on PATH")
  endif()
  execute_process(COMMAND "${_opend_protoc}" --version OUTPUT_VARIABLE _opend_protoc_out RESULT_VARIABLE _opend_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REGEX MATCH "[0-9]+(\\.[0-9]+)+" _opend_protoc_version "${_opend_protoc_out}")
  if(NOT "${Protobuf_VERSION}" IN_LIST _opend_names)
    message(FATAL_ERROR "opend-build: protobuf: found protobuf ${Protobuf_VERSION} (${_opend_pb_how}) where the plan expected ${_opend_planned}; what to do: check CMAKE_PREFIX_PATH, or pass --protobuf the prefix to use")
  endif()
  if(NOT _opend_rc EQUAL 0 OR NOT "${_opend_protoc_version}" IN_LIST _opend_names)
    message(FATAL_ERROR "opend-build: protobuf: protoc ${_opend_protoc} is version '${_opend_protoc_version}' but the protobuf headers and library (${_opend_pb_how}) are ${_opend_planned}; what to do: install the protoc of that same version (e.g. protobuf-compiler and libprotobuf-dev from one source), or put it first on PATH")
  endif()
  message(STATUS "opend-build: protobuf ${_opend_planned} (${_opend_pb_how}), protoc ${_opend_protoc}")
  add_library(opend_protobuf::libprotobuf INTERFACE IMPORTED)
  set_target_properties(opend_protobuf::libprotobuf PROPERTIES INTERFACE_LINK_LIBRARIES protobuf::libprotobuf)
  add_executable(opend_protobuf::protoc IMPORTED)
  set_target_properties(opend_protobuf::protoc PROPERTIES IMPORTED_LOCATION "${_opend_protoc}")
  set(${out_version} "${_opend_planned}")
endmacro()
