#!/usr/bin/python3
"""redis-cli's hints, read from COMMAND DOCS, as a user sees them.

redis-cli (7.0) asks the server for COMMAND DOCS when it starts interactively and shows, after a
typed command name, the arguments that command takes. This runs the real redis-cli in a
pseudo-terminal against a server, types each command name and reads the hint it prints: against
our models the hint must describe what we serve (SET without the expiry options we refuse), and
against redis-server the commands we share must read the same.

  redis_cli_hints_test.py --serve BINARY --model M
  redis_cli_hints_test.py --redis-server [PATH]
"""
import argparse
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from targets import start_redis_server, start_switchyard  # noqa: E402

# The hint after "name ", as redis-cli prints it from our COMMAND DOCS.
SHARED = {
    "get": "key",
    "mset": "key value [key value ...]",
    "msetnx": "key value [key value ...]",
    "incrbyfloat": "key increment",
    "exists": "key [key ...]",
    "flushall": "[ASYNC|SYNC]",
    "append": "key value",
    "hello": "[protover [AUTH username password] [SETNAME clientname]]",
}
OURS_ONLY = {"set": "key value [NX|XX] [GET]"}  # redis-server's also lists EX, PX, ...

HINT = re.compile(rb"\x1b\[0;90;49m(.*?)\x1b\[0m")  # linenoise's grey hint


def hints(port, names, deadline_seconds=20):
    """Types each name and a space into redis-cli on a terminal; returns {name: last hint}."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("redis-cli", ["redis-cli", "-p", str(port)])
    # A real window size, so linenoise neither probes the cursor nor wraps the line.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    deadline = time.monotonic() + deadline_seconds

    def read_for(seconds, until=None):
        """What redis-cli writes in `seconds`, or less once `until(data)` holds (a loaded machine
        may take longer than a quiet one to draw a hint; a fixed wait would read None there)."""
        data = b""
        end = min(time.monotonic() + seconds, deadline)
        while time.monotonic() < end and not (until and until(data)):
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    data += os.read(fd, 65536)
                except OSError:
                    break
        return data

    found = {}
    try:
        prompt = f"{port}> ".encode()
        read_for(10.0, until=lambda data: prompt in data)  # drawn once COMMAND DOCS is read
        for name in names:
            typed = name.encode() + b" "
            os.write(fd, typed)
            # linenoise redraws the whole line as it takes each character: the draw that follows
            # the typed name and its space carries the name's hint.
            hinted = re.compile(re.escape(typed) + HINT.pattern)
            shown = hinted.findall(read_for(5.0, until=hinted.search))
            found[name] = shown[-1].decode() if shown else None
            os.write(fd, b"\x15")  # Ctrl-U: clear the line
            read_for(1.0, until=lambda data: prompt in data)
        os.write(fd, b"quit\r")
        read_for(0.3)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", help="the switchyard binary")
    parser.add_argument("--model")
    parser.add_argument("--redis-server", nargs="?", const="redis-server")
    args = parser.parse_args()
    if args.redis_server:
        target, expected = start_redis_server(args.redis_server), dict(SHARED)
    elif args.serve and args.model:
        target, expected = start_switchyard(args.serve, args.model), {**SHARED, **OURS_ONLY}
    else:
        parser.error("give --serve BINARY --model M, or --redis-server")
    try:
        found = hints(target.port, list(expected))
    finally:
        target.stop()
    failed = 0
    for name, hint in expected.items():
        ok = found.get(name) == hint
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name} {found.get(name)!r}"
              + ("" if ok else f" (expected {hint!r})"))
    print(f"{len(expected) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
