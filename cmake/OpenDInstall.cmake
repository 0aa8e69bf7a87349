include_guard(GLOBAL)

# Layout (relative to the install prefix, the SDK's own shape):
#   ${OPEND_BIN_DIR}/lib<Lib>.a, libprotobuf.a, protoc[, channel libraries]
#   Include/<SDK headers>, Include/google/protobuf/..., Include/Proto/*.proto|*.pb.h|*.pb.cc
#   lib/cmake/<Lib>/<Lib>Config.cmake (+ ConfigVersion): imported targets, found relative to itself.
#   (the protobuf pieces only when it was built from source; an installed protobuf is the consumer's)
install(TARGETS opend_sdk ARCHIVE DESTINATION "${OPEND_BIN_DIR}")
set(OPEND_SHIPS_PROTOBUF ON)
if(OPEND_PROTOBUF_PROVIDER STREQUAL "installed")
  set(OPEND_SHIPS_PROTOBUF OFF)
endif()
if(OPEND_SHIPS_PROTOBUF)
  install(FILES "$<TARGET_FILE:opend_protobuf::libprotobuf>" DESTINATION "${OPEND_BIN_DIR}")
  install(PROGRAMS "$<TARGET_FILE:opend_protobuf::protoc>" DESTINATION "${OPEND_BIN_DIR}")
endif()
if(OPEND_CHANNEL_LIBS)  # where the vendor puts them, under their own names
  install(FILES ${OPEND_CHANNEL_LIBS} DESTINATION "${OPEND_CHANNEL_DIR}")
endif()

install(DIRECTORY "${_stage}/" DESTINATION Include)
install(FILES ${_generated_h} ${_generated_cc} DESTINATION Include/Proto)
set(_pb_includes "")
if(OPEND_SHIPS_PROTOBUF)
  get_target_property(_pb_includes opend_protobuf::libprotobuf INTERFACE_INCLUDE_DIRECTORIES)
endif()
foreach(_dir IN LISTS _pb_includes)  # protobuf's headers, and from 22 on abseil's and utf8_range's
  string(REGEX REPLACE "^\\$<BUILD_INTERFACE:(.*)>$" "\\1" _dir "${_dir}")
  if(_dir MATCHES "^\\$<" OR NOT IS_DIRECTORY "${_dir}")
    continue()
  endif()
  install(DIRECTORY "${_dir}/" DESTINATION Include
    FILES_MATCHING PATTERN "*.h" PATTERN "*.inc" PATTERN "testdata" EXCLUDE PATTERN "testing" EXCLUDE)
endforeach()

# The channel as the package's <Lib>::Channel: the shared library, and on Windows its import library.
set(OPEND_CHANNEL_FILE "")
set(OPEND_CHANNEL_IMPLIB "")
foreach(_lib IN LISTS OPEND_CHANNEL_LIBS)
  get_filename_component(_name "${_lib}" NAME)
  if(_name MATCHES "\\.lib$")
    set(OPEND_CHANNEL_IMPLIB "${_name}")
  elseif(NOT OPEND_CHANNEL_FILE)
    set(OPEND_CHANNEL_FILE "${_name}")
  endif()
endforeach()
set(OPEND_CHANNEL_STATIC_FILE "")
set(OPEND_CHANNEL_KIND "none")
if(OPEND_CHANNEL_FILE OR OPEND_CHANNEL_SOURCE_DIR)
  set(OPEND_CHANNEL_KIND "vendor")
endif()
if(OPEND_OPEN_CHANNEL)  # ours, under the vendor's file name and where the vendor keeps it; its static archive beside lib<Lib>
  install(TARGETS opend_channel LIBRARY DESTINATION "${OPEND_CHANNEL_DIR}" RUNTIME DESTINATION "${OPEND_CHANNEL_DIR}"
    ARCHIVE DESTINATION "${OPEND_CHANNEL_DIR}")
  install(TARGETS opend_channel_static ARCHIVE DESTINATION "${OPEND_BIN_DIR}")
  foreach(_h IN ITEMS FTAPIChannel.h FTAPIChannel_Define.h)
    if(NOT EXISTS "${_stage}/${_h}")  # the SDK's own declarations, where it has them (the same ABI)
      install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/channel/include/${_h}" DESTINATION Include)
    endif()
  endforeach()
  set(OPEND_CHANNEL_KIND "open")
  set(OPEND_CHANNEL_FILE "$<TARGET_FILE_NAME:opend_channel>")
  if(WIN32)
    set(OPEND_CHANNEL_IMPLIB "$<TARGET_LINKER_FILE_NAME:opend_channel>")
  endif()
  set(OPEND_CHANNEL_STATIC_FILE "$<TARGET_FILE_NAME:opend_channel_static>")
endif()
# What the open channel's static archive links, as targets (the CMake package) and as names (for
# package managers that take names: Conan's package_info): Windows' own CNG and Winsock there,
# OpenSSL's libcrypto (by the file CMake found) and the threads library elsewhere. protobuf's
# runtime needs the threads library and libm on Linux.
set(OPEND_PROTOBUF_SYSTEM_LIBS "")
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(OPEND_PROTOBUF_SYSTEM_LIBS pthread m)
endif()
set(OPEND_CHANNEL_STATIC_LIBS "")
if(WIN32)
  set(OPEND_CHANNEL_STATIC_LINK "bcrypt;ws2_32")
  if(OPEND_OPEN_CHANNEL)
    set(OPEND_CHANNEL_STATIC_LIBS bcrypt ws2_32)
  endif()
else()
  set(OPEND_CHANNEL_STATIC_LINK "OpenSSL::Crypto;Threads::Threads")
  if(OPEND_OPEN_CHANNEL)
    get_filename_component(_crypto "${OPENSSL_CRYPTO_LIBRARY}" NAME_WE)
    string(REGEX REPLACE "^lib" "" _crypto "${_crypto}")
    if(NOT _crypto)  # found through a package's config (Conan's CMakeDeps), which names no file: OpenSSL's own name
      set(_crypto crypto)
    endif()
    set(OPEND_CHANNEL_STATIC_LIBS ${_crypto})
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
      list(APPEND OPEND_CHANNEL_STATIC_LIBS pthread)
    endif()
  endif()
endif()
set(OPEND_CHANNEL_DEFINES "")
if(OPEND_OPEN_CHANNEL)  # what its header needs (the brand's C names), as the channel's own target carries it
  set(OPEND_CHANNEL_DEFINES "$<TARGET_PROPERTY:opend_channel,INTERFACE_COMPILE_DEFINITIONS>")
endif()
set(OPEND_PROTOBUF_VERSION_FOUND "${_protobuf_version}")
set(OPEND_PROTOBUF_LIB_FILE "")
set(OPEND_PROTOBUF_DEFINES "")
set(OPEND_PROTOC_FILE "")
if(OPEND_SHIPS_PROTOBUF)  # resolved when the package files are generated, from the target itself
  set(OPEND_PROTOBUF_LIB_FILE "$<TARGET_FILE_NAME:opend_protobuf::libprotobuf>")
  set(OPEND_PROTOBUF_DEFINES "$<TARGET_PROPERTY:opend_protobuf::libprotobuf,INTERFACE_COMPILE_DEFINITIONS>")
  set(OPEND_PROTOC_FILE "$<TARGET_FILE_NAME:opend_protobuf::protoc>")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/OpenDConfig.cmake.in" "${CMAKE_CURRENT_BINARY_DIR}/OpenDConfig.cmake.gen" @ONLY)
file(GENERATE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Config.cmake"
  INPUT "${CMAKE_CURRENT_BINARY_DIR}/OpenDConfig.cmake.gen")
include(CMakePackageConfigHelpers)
set(_version "${OPEND_SDK_VERSION}")
if(NOT _version MATCHES "^[0-9]+(\\.[0-9]+)*$")
  set(_version 0)
endif()
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}ConfigVersion.cmake"
  VERSION "${_version}" COMPATIBILITY AnyNewerVersion)
# The C++ standard consumers compile with at least (the protobuf's headers need it), on the
# package's targets: the config includes it, and Conan's CMakeDeps, whose targets are its own,
# includes it as a build module. Written only when its text changes (a reconfigure after an edit
# leaves it, and so the installed copy, as it was).
file(CONFIGURE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Standard.cmake" CONTENT
"foreach(_opend_target IN ITEMS ${OPEND_LIB}::${OPEND_LIB} ${OPEND_LIB}::protobuf)
  if(TARGET \${_opend_target})
    set_property(TARGET \${_opend_target} APPEND PROPERTY INTERFACE_COMPILE_FEATURES cxx_std_${OPEND_CXX_STANDARD})
  endif()
endforeach()
unset(_opend_target)
" @ONLY)
# The same usage facts for other package managers (Conan's package_info reads them), as JSON.
set(_json_list "")
foreach(_var IN ITEMS OPEND_THIRD_PARTY OPEND_THIRD_PARTY_LIBS OPEND_PROTOBUF_SYSTEM_LIBS OPEND_CHANNEL_STATIC_LIBS)
  set(_items "")
  foreach(_item IN LISTS ${_var})
    list(APPEND _items "\"${_item}\"")
  endforeach()
  list(JOIN _items ", " _items)
  set(${_var}_JSON "[${_items}]")
endforeach()
set(_ships false)
if(OPEND_SHIPS_PROTOBUF)
  set(_ships true)
endif()
file(GENERATE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Usage.json" CONTENT "{
  \"lib\": \"${OPEND_LIB}\",
  \"library\": \"$<TARGET_FILE_BASE_NAME:opend_sdk>\",
  \"bin_dir\": \"${OPEND_BIN_DIR}\",
  \"ships_protobuf\": ${_ships},
  \"protobuf_file\": \"${OPEND_PROTOBUF_LIB_FILE}\",
  \"protobuf_defines\": [$<$<BOOL:${OPEND_PROTOBUF_DEFINES}>:\"$<JOIN:${OPEND_PROTOBUF_DEFINES},\", \">\">],
  \"protobuf_version\": \"${_protobuf_version}\",
  \"cxx_standard\": ${OPEND_CXX_STANDARD},
  \"cxx_standard_module\": \"lib/cmake/${OPEND_LIB}/${OPEND_LIB}Standard.cmake\",
  \"include_dirs\": [\"Include\", \"Include/Proto\"],
  \"channel_dir\": \"${OPEND_CHANNEL_DIR}\",
  \"channel\": \"${OPEND_CHANNEL_FILE}\",
  \"channel_implib\": \"${OPEND_CHANNEL_IMPLIB}\",
  \"channel_kind\": \"${OPEND_CHANNEL_KIND}\",
  \"channel_defines\": [$<$<BOOL:${OPEND_CHANNEL_DEFINES}>:\"$<JOIN:${OPEND_CHANNEL_DEFINES},\", \">\">],
  \"openssl_version\": \"${OPENSSL_VERSION}\",
  \"zlib_version\": \"${ZLIB_VERSION_STRING}\",
  \"channel_static\": \"${OPEND_CHANNEL_STATIC_FILE}\",
  \"third_party\": ${OPEND_THIRD_PARTY_JSON},
  \"system_libs\": ${OPEND_THIRD_PARTY_LIBS_JSON},
  \"protobuf_system_libs\": ${OPEND_PROTOBUF_SYSTEM_LIBS_JSON},
  \"channel_static_libs\": ${OPEND_CHANNEL_STATIC_LIBS_JSON}
}
")
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Config.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}ConfigVersion.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Usage.json"
  "${CMAKE_CURRENT_BINARY_DIR}/${OPEND_LIB}Standard.cmake"
  DESTINATION "lib/cmake/${OPEND_LIB}")
