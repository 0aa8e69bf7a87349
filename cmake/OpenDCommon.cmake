# Compile settings every target of ours shares: the SDK's language level (gnu++11 on GCC/Clang,
# which is what the vendor's FAQ prescribes) and nothing global.
include_guard(GLOBAL)
function(opend_cxx_defaults target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 11 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS ON)
endfunction()
