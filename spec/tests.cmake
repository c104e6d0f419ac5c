# tests.cmake - every test ctest runs: C unit tests (spec/c/test_*.c), the
# busted specs (spec/*_spec.lua, each its own test with a timeout), and the
# libFuzzer targets when LUASVC_FUZZ is on.

file(GLOB C_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/spec/c/test_*.c)
foreach(src ${C_TESTS})
  get_filename_component(t ${src} NAME_WE)
  add_executable(${t} ${src})
  target_link_libraries(${t} luasvc_core)
  add_test(NAME c.${t} COMMAND ${t})
  set_tests_properties(c.${t} PROPERTIES TIMEOUT 60)
endforeach()
# test_metrics: the metrics endpoint's answers, from the executable's front end
target_sources(test_metrics PRIVATE runtime/front/metrics.c runtime/front/metrics_text.c runtime/front/http_head.c)

add_executable(rawsend spec/tools/rawsend.c)

find_program(BUSTED busted)
file(GLOB SPECS ${CMAKE_CURRENT_SOURCE_DIR}/spec/*_spec.lua)
foreach(spec ${SPECS})
  get_filename_component(t ${spec} NAME_WE)
  add_test(NAME spec.${t}
    COMMAND ${BUSTED} --helper=spec/helper.lua --output=utfTerminal ${spec}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(spec.${t} PROPERTIES TIMEOUT 180 FIXTURES_REQUIRED spec_hosts
    ENVIRONMENT "LUASVC_BIN=$<TARGET_FILE:luasvc>;LUASVC_RAWSEND=$<TARGET_FILE:rawsend>;LUASVC_BUILD_DIR=${CMAKE_BINARY_DIR};LUASVC_SPEC_HOSTS=${CMAKE_BINARY_DIR}/spec-hosts")
endforeach()
# After the specs (also when one was killed at its timeout, which never
# runs its cleanup): the hosts they started and did not see end are killed.
add_test(NAME spec.leftovers
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/spec/tools/leftovers.sh ${CMAKE_BINARY_DIR}/spec-hosts)
set_tests_properties(spec.leftovers PROPERTIES TIMEOUT 30 FIXTURES_CLEANUP spec_hosts)
# engine_spec measures the worst request while a new version's top level
# spins a whole CPU: on a 2-CPU machine a second spec beside it (ctest -j2)
# decides that figure more than the runtime does. It runs alone.
set_tests_properties(spec.engine_spec PROPERTIES RUN_SERIAL TRUE)
# ptree_spec starts some 2,000 processes (1,000 short children in each of
# its two modes): on a loaded 2-CPU machine a child costs 10 ms or more.
set_tests_properties(spec.ptree_spec PROPERTIES TIMEOUT 400)

# Under a real systemd: a throw-away user manager in private namespaces
# (scripts/systemd-harness), around the specs in spec/systemd/. Reported
# SKIPPED (77) where the machine cannot run one (not root, no unshare, no
# systemd), with the reason in the test's output.
file(GLOB SYSTEMD_SPECS ${CMAKE_CURRENT_SOURCE_DIR}/spec/systemd/*_spec.lua)
foreach(spec ${SYSTEMD_SPECS})
  get_filename_component(t ${spec} NAME_WE)
  add_test(NAME systemd.${t}
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/scripts/systemd-harness
            ${BUSTED} --helper=spec/helper.lua --output=utfTerminal ${spec}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(systemd.${t} PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
    ENVIRONMENT "LUASVC_BIN=$<TARGET_FILE:luasvc>;LUASVC_RAWSEND=$<TARGET_FILE:rawsend>")
endforeach()

if(LUASVC_FUZZ)
  # The parser and what it calls, instrumented for coverage.
  add_executable(fuzz_proto spec/fuzz/fuzz_proto.c runtime/pure/proto.c runtime/pure/util.c runtime/pure/model.c)
  target_include_directories(fuzz_proto PRIVATE runtime)
  target_compile_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_proto PRIVATE -fsanitize=fuzzer,address,undefined)
  # New inputs go to the first directory (the build's), never the repo's seeds.
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus)
  add_test(NAME fuzz.proto COMMAND fuzz_proto -max_total_time=20 -max_len=600
    ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus ${CMAKE_CURRENT_SOURCE_DIR}/spec/fuzz/corpus)
  set_tests_properties(fuzz.proto PROPERTIES TIMEOUT 120)
  # The metrics endpoint's request-head reader, fed chunk by chunk.
  add_executable(fuzz_http_head spec/fuzz/fuzz_http_head.c runtime/front/http_head.c)
  target_include_directories(fuzz_http_head PRIVATE runtime)
  target_compile_options(fuzz_http_head PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_http_head PRIVATE -fsanitize=fuzzer,address,undefined)
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus-http)
  add_test(NAME fuzz.http_head COMMAND fuzz_http_head -max_total_time=20 -max_len=400
    ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus-http ${CMAKE_CURRENT_SOURCE_DIR}/spec/fuzz/http-head-corpus)
  set_tests_properties(fuzz.http_head PROPERTIES TIMEOUT 120)

  # luasvc.http's parser glue (runtime/engine/http.c) with llhttp, both
  # instrumented, driven through Lua as lua/http.lua drives it.
  add_executable(fuzz_http spec/fuzz/fuzz_http.c runtime/engine/http.c ${CMAKE_CURRENT_BINARY_DIR}/lua_http.c
    ${LUASVC_LLHTTP_DIR}/llhttp/llhttp.c ${LUASVC_LLHTTP_DIR}/llhttp/api.c ${LUASVC_LLHTTP_DIR}/llhttp/http.c)
  target_include_directories(fuzz_http PRIVATE runtime runtime/engine ${LUA_INCLUDE_DIR} ${LUASVC_UV_INCLUDE_DIR}
    ${LUASVC_LLHTTP_DIR}/include/llhttp)
  target_compile_options(fuzz_http PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_http PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_http ${LUA_LIBRARY} m dl)
  # third-party code: no warnings of ours
  set_source_files_properties(${LUASVC_LLHTTP_DIR}/llhttp/llhttp.c ${LUASVC_LLHTTP_DIR}/llhttp/api.c
    ${LUASVC_LLHTTP_DIR}/llhttp/http.c PROPERTIES COMPILE_OPTIONS -w)
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-http-corpus)
  add_test(NAME fuzz.http COMMAND fuzz_http -max_total_time=20 -max_len=4096
    ${CMAKE_CURRENT_BINARY_DIR}/fuzz-http-corpus ${CMAKE_CURRENT_SOURCE_DIR}/spec/fuzz/http-corpus)
  set_tests_properties(fuzz.http PROPERTIES TIMEOUT 120)
endif()
