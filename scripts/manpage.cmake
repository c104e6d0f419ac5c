# manpage.cmake - writes luasvc(1) from the binary's own usage text, at
# build time, so the page cannot drift from `luasvc --help`:
#   cmake -DLUASVC=path/to/luasvc -DOUT=luasvc.1 -DVERSION=x.y.z -P manpage.cmake
# The help text goes in verbatim (escaped for roff), whatever its layout.
# Each verb named at the start of a help line ("  run ...", "  stop|pause")
# gets its own section when `luasvc help VERB` says more than the general
# text (per-verb help); a verb whose help fails or repeats it is skipped.
execute_process(COMMAND ${LUASVC} --help OUTPUT_VARIABLE help ERROR_VARIABLE help_err
  RESULT_VARIABLE rc)
if(NOT help)
  set(help "${help_err}")
endif()
if(NOT rc EQUAL 0 OR NOT help)
  message(FATAL_ERROR "manpage.cmake: '${LUASVC} --help' failed (${rc}): ${help_err}")
endif()

# Verbatim text as roff: backslashes escaped, lines that roff would take as
# requests (a leading . or ') made plain.
function(roff_verbatim text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

roff_verbatim("${help}" help_roff)
set(page ".TH LUASVC 1 \"\" \"luasvc ${VERSION}\" \"User Commands\"
.SH NAME
luasvc \\- operating-system services written as Lua 5.4 scripts
.SH SYNOPSIS
.B luasvc
.I COMMAND
.RI [ ARGS ...]
.SH DESCRIPTION
luasvc hosts services written as Lua 5.4 scripts. The C runtime owns what a
service manager talks to (status, controls, checkpoints and wait hints,
deadlines, exit codes), on the model of the Windows service control
manager; a script says what happens on start, while running and on each
control.
.B luasvc run
hosts scripts in the foreground;
.B luasvc install --systemd
writes a systemd unit.
.SH COMMANDS
The usage text of this version (\\fBluasvc --help\\fR):
.PP
.nf
${help_roff}.fi
")

# Per-verb help, where the binary has it.
string(REGEX MATCHALL "(^|\n)  [a-z][a-z|]*" verb_lines "${help}")
set(seen)
foreach(line ${verb_lines})
  string(STRIP "${line}" line)
  string(REPLACE "|" ";" verbs "${line}")
  foreach(verb ${verbs})
    list(FIND seen ${verb} known)
    if(NOT known EQUAL -1)
      continue()
    endif()
    list(APPEND seen ${verb})
    execute_process(COMMAND ${LUASVC} help ${verb} OUTPUT_VARIABLE vhelp ERROR_QUIET
      RESULT_VARIABLE vrc TIMEOUT 10)
    if(vrc EQUAL 0 AND vhelp AND NOT vhelp STREQUAL help)
      roff_verbatim("${vhelp}" vroff)
      string(APPEND page ".SS ${verb}\n.nf\n${vroff}.fi\n")
    endif()
  endforeach()
endforeach()

string(APPEND page ".SH FILES
.TP
.I share/luasvc/examples/
example services (heartbeat.lua, status_poster.lua), beside the installed binary's prefix
.TP
.I share/luasvc/types/luasvc.lua
lua-language-server definitions of the Lua API;
.B luasvc new
writes a .luarc.json that points at them
.TP
.I share/doc/luasvc/
README.md (the script contract, the command line, systemd and Windows) and API.md (the Lua API)
.SH ENVIRONMENT
.TP
.B LUASVC_RUNTIME_DIR
where running hosts keep their control sockets and mailslots (else
\\fB$XDG_RUNTIME_DIR/luasvc\\fR, else \\fB/run/luasvc\\fR)
.SH EXIT STATUS
0 on success; for \\fBrun\\fR, the first failing service's status, 2 when a
script does not load; for client commands, 1 when the control was refused;
2 for bad usage.
")
file(WRITE ${OUT}.tmp "${page}")
file(RENAME ${OUT}.tmp ${OUT})
