include_guard(GLOBAL)

# The libraries an SDK's own sources use beyond protobuf, found by what they include: the 10.x
# generation's sources include <openssl/...> (and link zlib). Each is found the way CMake finds it
# and linked into <target>'s usage; `out_packages` names the packages the installed config must
# find_dependency() again, `out_targets` their imported targets and `out_system_libs` the plain
# library names (for Conan's package_info).
function(opend_link_third_party target sources out_packages out_targets out_system_libs)
  set(_wanted "")
  foreach(_src IN LISTS sources)
    file(STRINGS "${_src}" _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](openssl/|zlib\\.h)")
    if(_includes MATCHES "openssl/")
      list(APPEND _wanted OpenSSL)
    endif()
    if(_includes MATCHES "zlib\\.h")
      list(APPEND _wanted ZLIB)
    endif()
  endforeach()
  list(REMOVE_DUPLICATES _wanted)
  set(_debian_OpenSSL libssl-dev)
  set(_debian_ZLIB zlib1g-dev)
  set(_targets_OpenSSL OpenSSL::SSL OpenSSL::Crypto)
  set(_targets_ZLIB ZLIB::ZLIB)
  set(_libs_OpenSSL ssl crypto)
  set(_libs_ZLIB z)
  set(_targets "")
  set(_libs "")
  foreach(_pkg IN LISTS _wanted)
    find_package(${_pkg} QUIET)
    if(NOT ${_pkg}_FOUND)
      message(FATAL_ERROR "opend-build: toolchain: the SDK's sources include ${_pkg} headers and CMake finds no ${_pkg}; "
        "what to do: install it (Debian: ${_debian_${_pkg}}; macOS: brew install openssl@3; Windows: vcpkg install openssl) "
        "or point CMAKE_PREFIX_PATH at it")
    endif()
    target_link_libraries(${target} INTERFACE ${_targets_${_pkg}})
    list(APPEND _targets ${_targets_${_pkg}})
    list(APPEND _libs ${_libs_${_pkg}})
  endforeach()
  set(${out_packages} "${_wanted}" PARENT_SCOPE)
  set(${out_targets} "${_targets}" PARENT_SCOPE)
  set(${out_system_libs} "${_libs}" PARENT_SCOPE)
endfunction()
