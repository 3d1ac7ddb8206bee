"""The servers a client test runs against, and its command line: start switchyard's models or
redis-server on free loopback ports (or use one already running), ask each what it supports, run a
unittest.TestCase on each in turn, stop what was started, and print one table of the outcome.

Shared by the client tests in this folder; the flags are described in each test's own docstring.
"""
import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import redis


class Target:
    """One server under test: where it listens, what it was asked to support, how it is stopped."""

    def __init__(self, name, host, port, process=None):
        self.name = name
        self.host = host
        self.port = port
        self.process = process
        self.server = "?"
        self.supports_multi = False
        self.supports_expiry = False
        self.flush_error = None  # what FLUSHALL answered, if it was refused

    def probe(self):
        """Asks the server, over a bare connection, what the feature-dependent tests depend on."""
        conn = redis.Connection(host=self.host, port=self.port, socket_timeout=10)
        conn.connect()

        def ask(*args):
            conn.send_command(*args)
            try:
                return conn.read_response()
            except redis.ResponseError as error:
                return error

        try:
            hello = ask("HELLO", "2")
            if isinstance(hello, list) and b"server" in hello:
                self.server = hello[hello.index(b"server") + 1].decode()
            # MULTI answered "OK" means transactions; an error means none. DISCARD leaves the
            # connection as it was.
            self.supports_multi = ask("MULTI") == b"OK"
            if self.supports_multi:
                ask("DISCARD")
            # A server that knows EXPIRE has expiry; COMMAND INFO answers [nil] for a command the
            # server does not have (and a server without COMMAND INFO knows nothing).
            info = ask("COMMAND", "INFO", "expire")
            self.supports_expiry = isinstance(info, list) and len(info) == 1 and info[0] is not None
        finally:
            conn.disconnect()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # The server runs in a session of its own (start_new_session), so its group is only
            # what we started: the server and, for prefork, its workers.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_switchyard(binary, model):
    errors = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [binary, "serve", "--model", model, "--port", "0", "--metrics-port", "0", "--quiet"],
        stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
    target = Target(model, "127.0.0.1", 0, process)
    # "switchyard ready: model=M port=P metrics_port=Q ...", within 30 s.
    line = process.stdout.readline() if select.select([process.stdout], [], [], 30)[0] else ""
    match = re.search(r"\bport=(\d+)", line)
    if not match:
        target.stop()
        errors.seek(0)
        raise RuntimeError(f"{model} did not get ready; it printed {line!r}, "
                           f"and on stderr {errors.read()[-300:]!r}")
    target.port = int(match.group(1))
    return target


def start_redis_server(path):
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--databases", "1"],
        stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    target = Target("redis-server", "127.0.0.1", port, process)
    deadline = time.monotonic() + 20
    while True:
        log.seek(0)
        text = log.read()
        if "Ready to accept connections" in text:
            return target
        if process.poll() is not None or time.monotonic() > deadline:
            target.stop()
            raise RuntimeError(f"redis-server did not get ready; its log ends: {text[-300:]!r}")
        time.sleep(0.05)



def resp_models(binary):
    """Every RESP model of the registry, as the binary lists it (name, protocol, ... a line)."""
    listing = subprocess.run([binary, "serve", "--list-models", "--format=tsv"],
                             capture_output=True, text=True, check=True).stdout
    return [f[0] for f in (line.split("\t") for line in listing.splitlines()) if f[1] == "resp"]


def load_tests(test_case, patterns):
    tests = unittest.TestLoader().loadTestsFromTestCase(test_case)
    if patterns:
        tests = unittest.TestSuite(t for t in tests if any(p in t.id() for p in patterns))
    return tests


def main(test_case, description):
    """Runs `test_case` (a unittest.TestCase class whose tests read its `target` attribute) on
    each target the command line names; returns the exit status."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--serve", metavar="BINARY", help="switchyard binary to start")
    parser.add_argument("--model", action="append", default=[],
                        help="model(s) for --serve, comma-separated or repeated; 'all': every one")
    parser.add_argument("--redis-server", nargs="?", const="redis-server", metavar="PATH",
                        help="start redis-server (the reference)")
    parser.add_argument("--port", type=int, action="append", default=[],
                        help="a server already running on this port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                        help="run only the tests whose name contains it")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    models = [m for spec in args.model for m in spec.split(",") if m]
    if models and not args.serve:
        parser.error("--model needs --serve BINARY")
    if "all" in models:
        models = resp_models(args.serve)
    if args.serve and not models:
        parser.error("--serve needs --model")
    plan = ([("redis-server", None)] if args.redis_server else []) + [(m, None) for m in models] + [
        (f"{args.host}:{p}", p) for p in args.port]
    if not plan:
        parser.error("nothing to test: give --serve BINARY --model M, --redis-server or --port P")

    # ctest's timeout sends SIGTERM: leave through the finally blocks, which stop the servers.
    # As KeyboardInterrupt, which unittest lets through (it would record SystemExit as an error
    # of the test running, and go on).
    def interrupted(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)

    rows = []
    for name, port in plan:
        target = None
        try:
            if port is not None:
                target = Target(name, args.host, port)
            elif name == "redis-server":
                target = start_redis_server(args.redis_server)
            else:
                target = start_switchyard(args.serve, name)
            target.probe()
            test_case.target = target
            print(f"\n=== {name} (server {target.server!r}, port {target.port}; "
                  f"MULTI: {'yes' if target.supports_multi else 'no'}, "
                  f"expiry: {'yes' if target.supports_expiry else 'no'})", flush=True)
            suite = load_tests(test_case, args.k)
            result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if args.verbose else 1
                                             ).run(suite)
            # A failing subTest is reported under its test method, once.
            if target.flush_error:
                print(f"warning: FLUSHALL was refused ({target.flush_error}): the tests ran "
                      "without an empty store at their start")
            failed = sorted({getattr(test, "test_case", test)._testMethodName
                             for test, _ in result.failures + result.errors})
            rows.append((name, result.testsRun - len(failed), failed))
        except Exception as error:  # a server that would not start or answer: one row, failed
            print(f"\n=== {name}: {error}", flush=True)
            rows.append((name, 0, [f"(not run: {error})"]))
        finally:
            if target is not None:
                target.stop()

    print("\ntarget            passed  failed  failing tests")
    for name, passed, failed in rows:
        print(f"{name:<17} {passed:>6}  {len(failed):>6}  {' '.join(failed)}")
    total_passed = sum(r[1] for r in rows)
    total_failed = sum(len(r[2]) for r in rows)
    print(f"{total_passed} passed, {total_failed} failed")
    return 1 if total_failed else 0
