#!/usr/bin/env python3
"""pty_attach.py - test tool: drive `luasvc attach NAME` through a
pseudo-terminal, as a person would (eval_spec.lua): the prompt, a chunk
over two lines, a log line of the service's arriving while attached (sent
by `luasvc control NAME 201`), then Ctrl+D. Exit 0 when each step saw
what it expects; else 1 with the step and the transcript. Every wait has
a deadline.

  pty_attach.py LUASVC_BIN NAME
"""
import os, pty, select, subprocess, sys, time

bin_, name = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(bin_, [bin_, "attach", name])

seen = b""

def expect(what, timeout=5.0):
    global seen
    deadline = time.monotonic() + timeout
    while what.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("expected %r" % what)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                fail("the console ended while expecting %r" % what)
            seen += data
    seen = seen[seen.index(what.encode()) + len(what):]

transcript = []

def fail(msg):
    sys.stderr.write("pty_attach: %s\nlast output: %r\n" % (msg, seen))
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
    sys.exit(1)

def send(s):
    os.write(fd, s.encode())

expect("Ctrl+D or .exit detaches")
expect("> ")
send("local a = 20 +\n")
expect(">> ")
send("22 return a\n")
expect("42")
expect("> ")
subprocess.run([bin_, "control", name, "201"], check=True)
expect("HELLO-CONSOLE")
send("=counter > 0\n")
expect("true")
send("x_pasted = 1\nreturn x_pasted + 1\n")  # two chunks pasted at once
expect("2")
send("\x04")
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)
    try:
        select.select([fd], [], [], 0.05)
        os.read(fd, 4096)
    except OSError:
        pass
fail("Ctrl+D did not detach")
