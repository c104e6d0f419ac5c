# spec/wine/tests.cmake - the tests of the Windows cross build: the C unit
# tests run as .exe under wine (CMAKE_CROSSCOMPILING_EMULATOR). The SCM
# suite needs a prepared Wine prefix and runs from scripts/wine-test.

file(GLOB C_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/spec/c/test_*.c)
foreach(src ${C_TESTS})
  get_filename_component(t ${src} NAME_WE)
  add_executable(${t} ${src})
  target_link_libraries(${t} luasvc_core)
  add_test(NAME c.${t} COMMAND ${t})
  set_tests_properties(c.${t} PROPERTIES TIMEOUT 120)
endforeach()
# test_metrics: the metrics endpoint's answers, from the executable's front end
target_sources(test_metrics PRIVATE runtime/front/metrics.c runtime/front/metrics_text.c runtime/front/http_head.c)
target_link_libraries(test_metrics ws2_32)
