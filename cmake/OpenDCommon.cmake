# Compile settings every target of ours shares, and nothing global: the language level, which
# follows the protobuf the SDK is built against (gnu++11 for 3.x, which is what the vendor's FAQ
# prescribes; 17 from 22 on, whose abseil's ABI changes with the standard). The driver decides it (opend_build.protobuf) and
# passes it in, on every route (build.py, and `build.py inputs` for presets, Conan and pip).
# MSVC has no C++11 mode: CXX_STANDARD 11 compiles at its floor, C++14 (/std:c++14), which is what the plan says.
include_guard(GLOBAL)
set(OPEND_CXX_STANDARD "11" CACHE STRING "C++ standard of the SDK's code, set by the driver from the protobuf version")
if(OPEND_CXX_STANDARD STREQUAL "")
  set_property(CACHE OPEND_CXX_STANDARD PROPERTY VALUE 11)
endif()
# Reproducible: build paths are mapped out of objects (debug info, __FILE__ in protobuf's logging),
# so the outputs do not depend on where the cache, the build folders or the checkout are; GNU ar
# writes deterministic archives (no timestamps, uids or modes).
set(OPEND_PATH_MAPS "" CACHE STRING "FROM=TO;...: path prefixes mapped out of the objects (-ffile-prefix-map)")
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  foreach(_map IN LISTS OPEND_PATH_MAPS)
    add_compile_options("-ffile-prefix-map=${_map}")
  endforeach()
endif()
if(CMAKE_AR MATCHES "(^|/)([^/]*-)?(gcc-)?ar(-[0-9.]+)?$" AND NOT APPLE)
  set(CMAKE_CXX_ARCHIVE_CREATE "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_CXX_ARCHIVE_APPEND "<CMAKE_AR> qD <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_CXX_ARCHIVE_FINISH "<CMAKE_RANLIB> -D <TARGET>")
endif()

# Position-independent code everywhere: users link the static libraries into shared objects of
# their own (the vendor's prebuilt libFTAPI.a is not PIC, which third parties rebuild it for).
function(opend_cxx_defaults target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD ${OPEND_CXX_STANDARD} CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()
