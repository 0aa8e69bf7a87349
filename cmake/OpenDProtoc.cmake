include_guard(GLOBAL)

# One protoc run per .proto, depending on the file and on the files it imports, so an edit
# regenerates that file and its importers only. protoc writes into a scratch folder and the
# results are copied over only when they differ: an mtime-only touch or an edit that leaves the
# generated code as it was (a comment, say) recompiles nothing.
#
# The generator is opend_protobuf::protoc, or OPEND_HOST_PROTOC when set: a cross build's protoc
# for the target cannot run here, so the build machine's (of the same source) generates.
function(opend_generate_cpp proto_dir out_dir protos out_cc out_h)
  file(MAKE_DIRECTORY "${out_dir}")
  set(_protoc opend_protobuf::protoc)
  if(OPEND_HOST_PROTOC)
    set(_protoc "${OPEND_HOST_PROTOC}")
  endif()
  set(_cc "")
  set(_h "")
  foreach(_rel IN LISTS protos)
    get_filename_component(_stem "${_rel}" NAME_WE)
    file(STRINGS "${proto_dir}/${_rel}" _imports REGEX "import[ \t]+(public[ \t]+|weak[ \t]+)?\"")
    set(_deps "${proto_dir}/${_rel}")
    foreach(_line IN LISTS _imports)
      if(_line MATCHES "\"([^\"]+)\"")
        set(_import "${proto_dir}/${CMAKE_MATCH_1}")
        if(EXISTS "${_import}")  # a missing import is protoc's to report, with file and line
          list(APPEND _deps "${_import}")
        endif()
      endif()
    endforeach()
    set(_scratch "${CMAKE_CURRENT_BINARY_DIR}/protoc-scratch/${_stem}")
    add_custom_command(
      OUTPUT "${out_dir}/${_stem}.pb.cc" "${out_dir}/${_stem}.pb.h"
      COMMAND "${CMAKE_COMMAND}" -E rm -rf "${_scratch}"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${_scratch}"
      COMMAND "${_protoc}" "-I${proto_dir}" "--cpp_out=${_scratch}" "${proto_dir}/${_rel}"
      COMMAND "${CMAKE_COMMAND}" -E copy_if_different
        "${_scratch}/${_stem}.pb.cc" "${_scratch}/${_stem}.pb.h" "${out_dir}"
      DEPENDS ${_deps} "${_protoc}"
      COMMENT "protoc ${_rel}"
      VERBATIM)
    list(APPEND _cc "${out_dir}/${_stem}.pb.cc")
    list(APPEND _h "${out_dir}/${_stem}.pb.h")
  endforeach()
  set(${out_cc} "${_cc}" PARENT_SCOPE)
  set(${out_h} "${_h}" PARENT_SCOPE)
endfunction()

# Unity batches of generated sources, sized by how much code each .proto generates. A batch holds
# up to max_files files and about budget_kb of generated code (estimated from the .proto: about
# 11 KB per message and 1.6 KB per field, which fits the 184 default files to within a few
# percent); a file larger than the budget compiles alone. Batching saves the per-file cost of
# protobuf's templates (a third of the CPU); the budget bounds what an edit recompiles: the edited
# file plus at most budget_kb of neighbours, never a neighbour such as Qot_StockScreen.pb.cc.
#
# Code from protoc 3.20 on defines two file-level statics under the same names in every .pb.cc,
# `schemas` and `file_default_instances` (the only names two of the 184 default files share in one
# translation unit, checked with all of them in one). Around each include of a batch they are
# renamed after CMake's per-file id (a hash of the path relative to the build folder, so the bytes
# do not follow the checkout); protobuf's header that declares DescriptorTable::schemas comes first,
# so its member keeps its name. The names are internal (static), so the objects' external symbols
# are the same as when each file compiles alone.
function(opend_unity_batches target proto_dir protos sources max_files budget_kb)
  set(_before "#include <google/protobuf/generated_message_reflection.h>\n#define OPEND_UNITY_PASTE(a, b) a##_##b\n#define OPEND_UNITY_NAME(a, b) OPEND_UNITY_PASTE(a, b)")
  set(_after "")
  foreach(_name IN ITEMS schemas file_default_instances)
    string(APPEND _before "\n#define ${_name} OPEND_UNITY_NAME(${_name}, OPEND_UNITY_ID)")
    string(APPEND _after "#undef ${_name}\n")
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP UNITY_BUILD_UNIQUE_ID OPEND_UNITY_ID
    UNITY_BUILD_CODE_BEFORE_INCLUDE "${_before}" UNITY_BUILD_CODE_AFTER_INCLUDE "${_after}")
  set(_batch 0)
  set(_files 0)
  set(_kb 0)
  set(_names "")  # batch -> its .proto files, for progress lines a user can read (opend-unity-batches.txt)
  foreach(_rel _source IN ZIP_LISTS protos sources)
    file(STRINGS "${proto_dir}/${_rel}" _messages REGEX "^[ \t]*message[ \t]+[A-Za-z_]")
    file(STRINGS "${proto_dir}/${_rel}" _fields REGEX "^[ \t]*(optional|required|repeated)[ \t]")
    list(LENGTH _messages _m)
    list(LENGTH _fields _f)
    math(EXPR _est "11 * ${_m} + (16 * ${_f}) / 10")
    math(EXPR _sum "${_kb} + ${_est}")
    if(_files GREATER 0 AND (_sum GREATER budget_kb OR _files EQUAL max_files))
      string(APPEND _names "\n")
      math(EXPR _batch "${_batch} + 1")
      set(_files 0)
      set(_sum ${_est})
    endif()
    if(_files EQUAL 0)
      string(APPEND _names "batch${_batch}")
    endif()
    get_filename_component(_stem "${_rel}" NAME_WE)
    string(APPEND _names " ${_stem}")
    set_source_files_properties("${_source}" PROPERTIES UNITY_GROUP "batch${_batch}")
    math(EXPR _files "${_files} + 1")
    set(_kb ${_sum})
  endforeach()
  file(CONFIGURE OUTPUT "${CMAKE_BINARY_DIR}/opend-unity-batches.txt" CONTENT "${_names}\n")
endfunction()
