# embed.cmake - turns a Lua source file into a C array (cmake -P).
# -DIN=file.lua -DOUT=file.c -DSYM=symbol
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} */\n#include <stddef.h>\nconst unsigned char ${SYM}[] = {${arr} 0};\nconst size_t ${SYM}_len = ${len};\n")
