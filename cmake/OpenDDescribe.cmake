# Run by `cmake --install` of a configure without the driver, after every other install rule
# (opend_describe_install in OpenDInputs.cmake sets the _opend_* variables): writes the install
# tree's build-manifest.json and SBOMs with cmake/opend_describe.py, the driver's own code.

# The toolchain facts come from CMake's File API reply to opend-build's query (written by the
# first configure). CMake reads queries before it configures, so that configure left it
# unanswered (other clients', scikit-build-core's, may be there): configuring once more answers it.
file(GLOB _opend_index "${_opend_build_dir}/.cmake/api/v1/reply/index-*.json")
set(_opend_answered OFF)
if(_opend_index)
  list(SORT _opend_index)
  list(GET _opend_index -1 _opend_last)
  file(READ "${_opend_last}" _opend_text)
  string(FIND "${_opend_text}" "\"client-opend-build\"" _opend_at)
  if(NOT _opend_at EQUAL -1)
    set(_opend_answered ON)
  endif()
endif()
if(NOT _opend_answered)
  execute_process(COMMAND "${CMAKE_COMMAND}" "${_opend_build_dir}" OUTPUT_QUIET RESULT_VARIABLE _opend_rc)
  if(NOT _opend_rc EQUAL 0)
    message(FATAL_ERROR "opend-build: configuring ${_opend_build_dir} again (for CMake's File API reply) failed (exit ${_opend_rc})")
  endif()
endif()

set(_opend_wheel "")
if(_opend_metadata_dir AND _opend_platlib_dir)  # a wheel: PEP 770's place for SBOMs, .dist-info/sboms
  set(_opend_wheel --sboms "${_opend_metadata_dir}/sboms" --wheel-root "${_opend_platlib_dir}")
endif()
execute_process(
  COMMAND "${_opend_python}" "${CMAKE_CURRENT_LIST_DIR}/opend_describe.py" --build-dir "${_opend_build_dir}"
    --prefix "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}" --build-type "${CMAKE_INSTALL_CONFIG_NAME}" ${_opend_wheel} -- ${_opend_inputs}
  RESULT_VARIABLE _opend_rc)
if(NOT _opend_rc EQUAL 0)
  message(FATAL_ERROR "opend-build could not write the installed SDK's build-manifest.json and SBOMs (exit ${_opend_rc}): see the error above")
endif()
