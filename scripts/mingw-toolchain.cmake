# mingw-toolchain.cmake - cross-compiles luasvc.exe for 64-bit Windows with
# Debian's mingw-w64 (gcc-mingw-w64-x86-64):
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=scripts/mingw-toolchain.cmake
# Tests run the .exe under wine when it is installed.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(LUASVC_MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${LUASVC_MINGW_TRIPLET}-gcc)
set(CMAKE_RC_COMPILER ${LUASVC_MINGW_TRIPLET}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${LUASVC_MINGW_TRIPLET})
# Find libraries and headers only in the mingw root; programs on the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
find_program(LUASVC_WINE NAMES wine wine64)
if(LUASVC_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${LUASVC_WINE})
endif()
