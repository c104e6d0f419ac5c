# deps.cmake - the event loop (libuv, and luv: libuv for Lua) and JSON
# (lua-cjson) for both builds, as three static libraries behind the same
# names, included from CMakeLists.txt once Lua is set up (LUA_LIBRARY,
# LUA_INCLUDE_DIR; on Windows LUASVC_WIN_DEPS).
#
#   Linux:   Debian's builds: libuv1-dev (static libuv_a.a, else the shared
#            libuv), lua-luv-dev (liblua5.4-luv.a), lua-cjson-dev
#            (liblua5.4-cjson.a).
#   Windows: compiled here from their Debian source packages, which
#            scripts/win-deps unpacked into LUASVC_WIN_DEPS (libuv1, lua-luv
#            with lua-compat53's compat-5.3.h, lua-cjson), against our Lua.
#
# What it exports, the same in both builds:
#   targets   luasvc_uv      libuv, with the system libraries it needs
#             luasvc_luv     luv; links luasvc_uv and Lua
#             luasvc_cjson   lua-cjson; links Lua
#   LUASVC_UV_LIBS        luasvc_uv        (link these three by name: the
#   LUASVC_LUV_LIBRARY    luasvc_luv        targets carry their include
#   LUASVC_CJSON_LIBRARY  luasvc_cjson      directories and link order)
#   LUASVC_UV_INCLUDE_DIR     the directory of uv.h
#   LUASVC_LUV_INCLUDE_DIR    the directory of luv.h (luv/ under the next)
#   LUASVC_DEPS_INCLUDE_DIR   the directory where "luv/luv.h" and
#                             "lua-cjson.h" are found (Linux: Lua's own,
#                             /usr/include/lua5.4)
# In C: #include "luv/luv.h" (it includes uv.h) and #include "lua-cjson.h"
# (declares luaopen_cjson; include lua.h first). Static link order, which
# the targets give by themselves: luv, cjson, then libuv and Lua.
#
# Versions: Linux has what Debian 12 ships (libuv 1.44, luv 1.44); Windows
# has the source versions listed in LUASVC_WIN_DEPS/VERSIONS (luv may come
# from a later Debian release when the machine's release has no source to
# be had; luv's API is the same, newer functions aside). Differences to
# know: on Windows lua-cjson refuses NaN/Inf/hex numbers when decoding
# (upstream's Windows setting, below); on Linux Debian's archives are not
# built for the sanitizers (ThreadSanitizer does not see libuv's own
# threadpool threads; the loop itself runs on the caller's thread).

if(WIN32)
  set(uv_dir ${LUASVC_WIN_DEPS}/libuv1)
  set(luv_dir ${LUASVC_WIN_DEPS}/lua-luv)
  set(cjson_dir ${LUASVC_WIN_DEPS}/lua-cjson)
  # Which versions (and from which release) scripts/win-deps unpacked.
  if(EXISTS ${LUASVC_WIN_DEPS}/VERSIONS)
    file(STRINGS ${LUASVC_WIN_DEPS}/VERSIONS versions)
    string(REPLACE ";" ", " versions "${versions}")
    message(STATUS "Windows third-party sources: ${versions}")
  endif()

  # libuv: the sources, definitions and system libraries libuv's own
  # CMakeLists.txt lists for WIN32, read from it so they follow its version.
  file(READ ${uv_dir}/CMakeLists.txt uv_cml)
  string(REGEX MATCH "set\\(uv_sources([^)]*)\\)" m "${uv_cml}")
  set(uv_common ${CMAKE_MATCH_1})
  string(FIND "${uv_cml}" "\nif(WIN32)\n" at)
  if(at LESS 0 OR NOT uv_common)
    message(FATAL_ERROR "${uv_dir}/CMakeLists.txt: no uv_sources or if(WIN32) block")
  endif()
  string(SUBSTRING "${uv_cml}" ${at} -1 uv_win)
  string(FIND "${uv_win}" "\nelse" end)
  string(SUBSTRING "${uv_win}" 0 ${end} uv_win)
  string(REGEX MATCH "list\\(APPEND uv_defines([^)]*)\\)" m "${uv_win}")
  set(uv_defines ${CMAKE_MATCH_1})
  string(REGEX MATCH "list\\(APPEND uv_libraries([^)]*)\\)" m "${uv_win}")
  set(uv_libraries ${CMAKE_MATCH_1})
  string(REGEX MATCH "list\\(APPEND uv_sources([^)]*)\\)" m "${uv_win}")
  set(uv_win_sources ${CMAKE_MATCH_1})
  if(NOT uv_libraries OR NOT uv_win_sources)
    message(FATAL_ERROR "${uv_dir}/CMakeLists.txt: no WIN32 uv_libraries or uv_sources")
  endif()
  foreach(v uv_common uv_win_sources uv_defines uv_libraries)
    separate_arguments(${v} UNIX_COMMAND "${${v}}")
  endforeach()
  set(uv_sources)
  foreach(src ${uv_common} ${uv_win_sources})
    list(APPEND uv_sources ${uv_dir}/${src})
  endforeach()
  # libuv's own _WIN32_WINNT (0x0602) replaces ours for its files: the
  # -U/-D options come after the definitions on the command line.
  set(uv_winnt)
  foreach(def ${uv_defines})
    if(def MATCHES "^_WIN32_WINNT=")
      list(REMOVE_ITEM uv_defines ${def})
      set(uv_winnt -U_WIN32_WINNT -D${def})
    endif()
  endforeach()
  add_library(luasvc_uv STATIC ${uv_sources})
  # SYSTEM: third-party headers, no warnings of ours in the files including them.
  target_include_directories(luasvc_uv SYSTEM PUBLIC ${uv_dir}/include)
  target_include_directories(luasvc_uv PRIVATE ${uv_dir}/src)
  target_compile_definitions(luasvc_uv PRIVATE ${uv_defines})
  # Third-party code: no warnings of ours (as for Lua).
  target_compile_options(luasvc_uv PRIVATE -w ${uv_winnt})
  target_link_libraries(luasvc_uv PUBLIC ${uv_libraries})
  set(LUASVC_UV_INCLUDE_DIR ${uv_dir}/include)

  # The headers where consumers find them on Linux: luv's public ones (the
  # four lua-luv-dev installs) under luv/, and lua-cjson.h, which Debian's
  # build (dh-lua) generates with this one declaration.
  set(LUASVC_DEPS_INCLUDE_DIR ${CMAKE_BINARY_DIR}/win-deps-include)
  set(LUASVC_LUV_INCLUDE_DIR ${LUASVC_DEPS_INCLUDE_DIR}/luv)
  foreach(h luv.h util.h lhandle.h lreq.h)
    configure_file(${luv_dir}/src/${h} ${LUASVC_LUV_INCLUDE_DIR}/${h} COPYONLY)
  endforeach()
  file(WRITE ${LUASVC_DEPS_INCLUDE_DIR}/lua-cjson.h.new
    "/* lua-cjson.h - as Debian's lua-cjson-dev has it (generated by luasvc's build) */\n\n"
    "extern int luaopen_cjson(lua_State*);\n")
  configure_file(${LUASVC_DEPS_INCLUDE_DIR}/lua-cjson.h.new
    ${LUASVC_DEPS_INCLUDE_DIR}/lua-cjson.h COPYONLY)

  # luv: one unity file, src/luv.c. No LUA_BUILD_AS_DLL (luv's build sets
  # it for a DLL; ours is static); compat-5.3.h from lua-compat53.
  add_library(luasvc_luv STATIC ${luv_dir}/src/luv.c)
  target_include_directories(luasvc_luv PRIVATE ${luv_dir}/src
    ${LUASVC_WIN_DEPS}/lua-compat53/c-api)
  target_include_directories(luasvc_luv SYSTEM PUBLIC ${LUASVC_DEPS_INCLUDE_DIR})
  target_compile_options(luasvc_luv PRIVATE -w)
  target_link_libraries(luasvc_luv PUBLIC luasvc_uv ${LUA_LIBRARY})

  # lua-cjson: the three files Debian's build compiles (its
  # debian/lua5.4.dh-lua.conf), with the definition upstream's build adds on
  # Windows: its sprintf/strtod treat NaN and Inf differently, so they are
  # refused (decode_invalid_numbers is off and cannot be turned on).
  add_library(luasvc_cjson STATIC ${cjson_dir}/lua_cjson.c ${cjson_dir}/strbuf.c
    ${cjson_dir}/fpconv.c)
  target_compile_definitions(luasvc_cjson PRIVATE DISABLE_INVALID_NUMBERS)
  target_include_directories(luasvc_cjson SYSTEM PUBLIC ${LUASVC_DEPS_INCLUDE_DIR})
  target_compile_options(luasvc_cjson PRIVATE -w)
  target_link_libraries(luasvc_cjson PUBLIC ${LUA_LIBRARY})
else()
  # libuv: the static archive libuv1-dev ships (libuv_a.a, with the libraries
  # its libuv-static.pc names), else the shared library.
  find_path(LUASVC_UV_INCLUDE_DIR uv.h REQUIRED)
  find_library(LUASVC_UV_ARCHIVE NAMES libuv_a.a uv_a uv REQUIRED)
  add_library(luasvc_uv UNKNOWN IMPORTED)
  set_target_properties(luasvc_uv PROPERTIES IMPORTED_LOCATION ${LUASVC_UV_ARCHIVE}
    INTERFACE_INCLUDE_DIRECTORIES ${LUASVC_UV_INCLUDE_DIR})
  if(LUASVC_UV_ARCHIVE MATCHES "\\.a$")
    set_property(TARGET luasvc_uv PROPERTY INTERFACE_LINK_LIBRARIES
      Threads::Threads ${CMAKE_DL_LIBS} rt)
  endif()

  # luv and lua-cjson: Debian's static archives for Lua 5.4; their headers
  # beside Lua's (lua5.4/luv/luv.h, lua5.4/lua-cjson.h).
  find_path(LUASVC_DEPS_INCLUDE_DIR luv/luv.h PATH_SUFFIXES lua5.4 REQUIRED)
  if(NOT EXISTS ${LUASVC_DEPS_INCLUDE_DIR}/lua-cjson.h)
    message(FATAL_ERROR "lua-cjson.h not found beside luv/luv.h in ${LUASVC_DEPS_INCLUDE_DIR} (lua-cjson-dev)")
  endif()
  set(LUASVC_LUV_INCLUDE_DIR ${LUASVC_DEPS_INCLUDE_DIR}/luv)
  find_library(LUASVC_LUV_ARCHIVE NAMES liblua5.4-luv.a REQUIRED)
  find_library(LUASVC_CJSON_ARCHIVE NAMES liblua5.4-cjson.a REQUIRED)
  add_library(luasvc_luv STATIC IMPORTED)
  set_target_properties(luasvc_luv PROPERTIES IMPORTED_LOCATION ${LUASVC_LUV_ARCHIVE}
    INTERFACE_INCLUDE_DIRECTORIES ${LUASVC_DEPS_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES "luasvc_uv;${LUA_LIBRARY};m")
  add_library(luasvc_cjson STATIC IMPORTED)
  set_target_properties(luasvc_cjson PROPERTIES IMPORTED_LOCATION ${LUASVC_CJSON_ARCHIVE}
    INTERFACE_INCLUDE_DIRECTORIES ${LUASVC_DEPS_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES "${LUA_LIBRARY};m")
endif()

set(LUASVC_UV_LIBS luasvc_uv)
set(LUASVC_LUV_LIBRARY luasvc_luv)
set(LUASVC_CJSON_LIBRARY luasvc_cjson)

# llhttp, the HTTP parser Node uses (runtime/engine/http.c): the C sources
# Debian's node-llhttp installs (/usr/share/llhttp/{llhttp,api,http}.c,
# /usr/share/include/llhttp/llhttp.h), compiled in, for both builds: they
# are generated, portable C, the same for Windows. (The source package,
# node-undici in bookworm, holds llhttp's TypeScript and llparse, not the
# generated C, which its build makes by running Node: scripts/win-deps
# says why it does not fetch it.) Target luasvc_llhttp; LUASVC_LLHTTP_DIR
# the directory holding llhttp/ (sources) and include/llhttp/.
set(LUASVC_LLHTTP_DIR /usr/share CACHE PATH "where node-llhttp put llhttp/*.c and include/llhttp/llhttp.h")
set(llhttp_src ${LUASVC_LLHTTP_DIR}/llhttp)
foreach(f ${llhttp_src}/llhttp.c ${llhttp_src}/api.c ${llhttp_src}/http.c
    ${LUASVC_LLHTTP_DIR}/include/llhttp/llhttp.h)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "${f} not found: llhttp's C sources come from Debian's node-llhttp (scripts/bootstrap installs it)")
  endif()
endforeach()
add_library(luasvc_llhttp STATIC ${llhttp_src}/llhttp.c ${llhttp_src}/api.c ${llhttp_src}/http.c)
target_include_directories(luasvc_llhttp SYSTEM PUBLIC ${LUASVC_LLHTTP_DIR}/include/llhttp)
# Third-party code: no warnings of ours.
target_compile_options(luasvc_llhttp PRIVATE -w)
set(LUASVC_LLHTTP_LIBRARY luasvc_llhttp)
