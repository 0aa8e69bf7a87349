# The open channel on macOS, included by channel/CMakeLists.txt when APPLE (after add_library).
#
# Crypto comes from the system (CommonCrypto in libSystem, Security.framework; src/crypto_apple.cpp),
# sockets from POSIX: the dylib links only libSystem, libc++ (zig: statically), Security and
# CoreFoundation. What it exports is the C API alone (src/exports.exp, this brand's names).
#
# Two linkers:
# - Apple's ld (a Mac, Xcode or the Command Line Tools): the compiler driver links, with
#   -exported_symbols_list.
# - zig (`zig c++ -target <arch>-macos.<min>`, from Linux or anywhere): zig 0.17's own Mach-O linker
#   ignores -exported_symbols_list, so the dylib would export libc++'s operator new/delete (a
#   consumer's allocations would bind to our copy) and __mh_dylib_header. This dylib alone is then
#   linked by LLVM's ld64.lld (Debian: package lld, /usr/lib/llvm-<N>/bin/ld64.lld) with the
#   objects zig compiled, zig's own libc++/libc++abi/compiler-rt archives (static, as zig links
#   them), a copy of zig's libSystem.tbd rewritten for lld (see below) and the framework stubs in
#   src/apple/. ld64.lld takes the export list, signs ad hoc (LC_CODE_SIGNATURE), and records the
#   minimum macOS zig compiled for (LC_BUILD_VERSION). Executables are still linked by zig.

set(OPEND_CHANNEL_LD64 "" CACHE FILEPATH "ld64.lld for the dylib when the compiler is zig (found on PATH and in /usr/lib/llvm-*/bin if empty)")

# This brand's export list: ld64 and ld64.lld both refuse a plain (non-wildcard) name that nothing defines.
if(OPEND_CHANNEL_LIB STREQUAL "FTAPI")
  set(_other_brand MMAPI)
else()
  set(_other_brand FTAPI)
endif()
file(STRINGS "${CMAKE_CURRENT_SOURCE_DIR}/src/exports.exp" _exp_lines)
list(FILTER _exp_lines EXCLUDE REGEX "${_other_brand}")
string(REPLACE ";" "\n" _exp_lines "${_exp_lines}")
set(_exports "${CMAKE_CURRENT_BINARY_DIR}/exports-${OPEND_CHANNEL_LIB}.exp")
file(CONFIGURE OUTPUT "${_exports}" CONTENT "${_exp_lines}\n" @ONLY)

# The frameworks: the SDK's where there is one, else our TBD stubs (src/apple/<Name>.framework/<Name>.tbd).
set(_apple_frameworks "-framework Security" "-framework CoreFoundation")
target_link_libraries(opend_channel PRIVATE ${_apple_frameworks})
target_link_libraries(opend_channel_static INTERFACE ${_apple_frameworks})
if(NOT CMAKE_OSX_SYSROOT OR NOT EXISTS "${CMAKE_OSX_SYSROOT}/System/Library/Frameworks/Security.framework")
  target_link_options(opend_channel PRIVATE "-F${CMAKE_CURRENT_SOURCE_DIR}/src/apple")
  target_link_options(opend_channel_static INTERFACE "-F${CMAKE_CURRENT_SOURCE_DIR}/src/apple")
endif()
set_target_properties(opend_channel PROPERTIES INSTALL_NAME_DIR "@rpath" MACOSX_RPATH ON)
set_property(TARGET opend_channel APPEND PROPERTY LINK_DEPENDS "${_exports}")

# Is the compiler zig? Its -v link line says "zig ld" and names the archives it links; the compile
# line names zig's lib folder (-isystem <lib>/libc/include/any-darwin-any). Probed once per compiler
# and flags.
set(_probe_key "${CMAKE_CXX_COMPILER};${CMAKE_CXX_COMPILER_ARG1};${CMAKE_CXX_FLAGS}")
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "AppleClang" AND NOT "${_probe_key}" STREQUAL "${OPEND_CHANNEL_ZIG_PROBE_KEY}")
  set(_pdir "${CMAKE_CURRENT_BINARY_DIR}/zig-probe")
  file(MAKE_DIRECTORY "${_pdir}")
  file(WRITE "${_pdir}/probe.cpp" "#include <string>\nint opend_probe(const char* s) { return static_cast<int>(std::string(s).size()); }\n")
  separate_arguments(_flags UNIX_COMMAND "${CMAKE_CXX_COMPILER_ARG1} ${CMAKE_CXX_FLAGS}")
  execute_process(COMMAND "${CMAKE_CXX_COMPILER}" ${_flags} -v -shared -o "${_pdir}/probe.dylib" "${_pdir}/probe.cpp"
                  WORKING_DIRECTORY "${_pdir}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  set(_zig "")
  string(REGEX MATCH "zig ld [^\n]*" _ldline "${_out}${_err}")
  if(_rc EQUAL 0 AND _ldline)
    string(REGEX MATCHALL "[^ \"]+/lib(c\\+\\+abi|c\\+\\+|compiler_rt|ubsan_rt)\\.a" _archives "${_ldline}")
    string(REGEX MATCH "-platform_version macos ([0-9.]+) ([0-9.]+)" _pv "${_ldline}")
    set(_min "${CMAKE_MATCH_1}")
    set(_sdk "${CMAKE_MATCH_2}")
    string(REGEX MATCH "[^ \"]+/libc/include/any-darwin-any" _inc "${_out}${_err}")
    string(REGEX REPLACE "/libc/include/any-darwin-any$" "" _libdir "${_inc}")
    file(READ "${_pdir}/probe.dylib" _head LIMIT 8 HEX)  # mach_header_64: magic, cputype (little-endian)
    if(_head STREQUAL "cffaedfe0c000001")
      set(_arch arm64)
    elseif(_head STREQUAL "cffaedfe07000001")
      set(_arch x86_64)
    else()
      message(FATAL_ERROR "zig's probe dylib is not a 64-bit arm64 or x86_64 Mach-O (header ${_head}): one arch per build")
    endif()
    if(NOT _archives OR NOT _min OR NOT EXISTS "${_libdir}/libc/darwin/libSystem.tbd")
      message(FATAL_ERROR "zig's link line no longer names what the channel relinks with ld64.lld:\n${_ldline}")
    endif()
    set(_zig "${_arch};${_min};${_sdk};${_libdir};${_archives}")
  endif()
  set(OPEND_CHANNEL_ZIG "${_zig}" CACHE INTERNAL "zig's arch, min, sdk, lib dir and archives (empty: not zig)")
  set(OPEND_CHANNEL_ZIG_PROBE_KEY "${_probe_key}" CACHE INTERNAL "")
endif()

if(NOT OPEND_CHANNEL_ZIG)
  # Apple's ld: the compiler driver links the dylib with the export list
  target_link_options(opend_channel PRIVATE "LINKER:-exported_symbols_list,${_exports}")
  return()
endif()

if(OPEND_CHANNEL_SANITIZE OR OPEND_CHANNEL_TSAN)
  message(FATAL_ERROR "the sanitizer builds are not made with zig for macOS")
endif()
list(POP_FRONT OPEND_CHANNEL_ZIG _arch _min _sdk _libdir)
set(_archives ${OPEND_CHANNEL_ZIG})
if(NOT OPEND_CHANNEL_LD64)
  file(GLOB _llvm_bins LIST_DIRECTORIES true /usr/lib/llvm-*/bin)
  list(SORT _llvm_bins COMPARE NATURAL ORDER DESCENDING)
  find_program(_ld64 NAMES ld64.lld PATHS ${_llvm_bins})
  if(NOT _ld64)
    message(FATAL_ERROR "the channel's dylib is linked by ld64.lld when the compiler is zig (zig's linker ignores export lists): "
                        "install LLVM's lld (Debian: apt-get install lld) or set OPEND_CHANNEL_LD64")
  endif()
  set(OPEND_CHANNEL_LD64 "${_ld64}" CACHE FILEPATH "ld64.lld for the dylib when the compiler is zig" FORCE)
  unset(_ld64 CACHE)
endif()

# zig's libSystem.tbd lists arm64e, arm64e.x1 and Mac Catalyst targets: ld64.lld (14) refuses the
# "arm64e.x1" architecture, and zig's arm64 stubs are its arm64e ones. The copy keeps every target
# list to arm64-macos and x86_64-macos (arm64e-macos read as arm64-macos). Built from zig's file at
# configure time, never stored in the repository.
set(_tbd "${CMAKE_CURRENT_BINARY_DIR}/zig-libSystem.tbd")
file(READ "${_libdir}/libc/darwin/libSystem.tbd" _text)
string(REGEX MATCHALL "\\[[^]]*-mac[a-z]+[^]]*\\]" _lists "${_text}")
list(REMOVE_DUPLICATES _lists)
foreach(_l IN LISTS _lists)
  string(REGEX MATCHALL "[A-Za-z0-9_.]+-mac[a-z]+" _ts "${_l}")
  set(_keep)
  foreach(_t IN LISTS _ts)
    if(_t STREQUAL "arm64e-macos")
      set(_t arm64-macos)
    endif()
    if(_t MATCHES "^(arm64|x86_64)-macos$")
      list(APPEND _keep "${_t}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES _keep)
  string(REPLACE ";" ", " _keep "${_keep}")
  string(REPLACE "${_l}" "[ ${_keep} ]" _text "${_text}")
endforeach()
file(CONFIGURE OUTPUT "${_tbd}" CONTENT "${_text}" @ONLY)

string(REPLACE ";" "\" \"" _archives_q "${_archives}")
set(CMAKE_SHARED_LIBRARY_CREATE_CXX_FLAGS "")  # the driver's -dynamiclib -Wl,...: ld64.lld takes -dylib itself
set(CMAKE_CXX_CREATE_SHARED_LIBRARY
    "\"${OPEND_CHANNEL_LD64}\" -dylib -arch ${_arch} -platform_version macos ${_min} ${_sdk} -install_name <TARGET_INSTALLNAME_DIR><TARGET_SONAME> -exported_symbols_list \"${_exports}\" -dead_strip -adhoc_codesign -headerpad_max_install_names <LINK_FLAGS> -o <TARGET> <OBJECTS> <LINK_LIBRARIES> \"${_archives_q}\" \"${_tbd}\"")
message(STATUS "opend_channel: the dylib is linked by ${OPEND_CHANNEL_LD64} (${_arch}, macOS ${_min}; zig's linker ignores export lists)")
