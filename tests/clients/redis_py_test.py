#!/usr/bin/python3
"""Switchyard through an unmodified client library: Debian's redis-py (python3-redis, 4.3.4),
called through its own API, with the same expectations on redis-server itself.

Every test holds on redis-server 7.0 (started with --databases 1, so that SELECT 1 is refused
there too). Where a server may lack a feature (MULTI/EXEC, key expiry), the test asks the server
first, once per target, and the expectation follows the answer: a server with the feature must
serve it as Redis does, a server without it must refuse it cleanly and stay usable. Nothing else
differs between targets.

Run against (each may be repeated; the targets run one after the other):
  --serve BINARY --model M[,M...]   start `BINARY serve --model M` on a free loopback port per model
                                     (--model all: every RESP model BINARY lists with
                                     `serve --list-models`)
  --redis-server [PATH]              start redis-server --save '' --appendonly no --databases 1
  --port P [--host H]                a server already running (not stopped); a redis-server
                                     needs --databases 1 there, as SELECT 1 must be refused
Other flags: -k SUBSTRING (run the tests whose name contains it; repeatable), -v.

It stops whatever it started, also on SIGINT/SIGTERM (ctest's timeout). It ends with a table of
targets and the line "N passed, N failed"; the exit status is 0 only if every test passed
everywhere.

Use Debian's interpreter (/usr/bin/python3): python3-redis is installed for it, not for another
python3 that may come first in PATH.
"""
import os
import sys
import time
import unittest
from pathlib import Path

try:
    import redis
except ImportError:  # pragma: no cover - a missing package is a setup error, said plainly
    sys.exit("redis-py is missing: apt-get install python3-redis; run this with /usr/bin/python3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets  # noqa: E402

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)

NOT_AN_INTEGER = "value is not an integer or out of range"
NOT_A_FLOAT = "value is not a valid float"
OVERFLOW = "increment or decrement would overflow"
NAN_OR_INF = "increment would produce NaN or Infinity"
SYNTAX = "syntax error"


class RedisPyTest(unittest.TestCase):
    maxDiff = None
    target = None  # the targets.Target the tests run against, set before each run

    def client(self, **kwargs):
        """A client of the target, closed at the end of the test."""
        c = redis.Redis(host=self.target.host, port=self.target.port, socket_timeout=10,
                        socket_connect_timeout=10, **kwargs)
        self.addCleanup(c.close)
        return c

    def setUp(self):
        self.r = self.client()
        # The store is shared by every connection: each test starts from an empty one. A server
        # that refuses FLUSHALL fails test_flushall; the other tests still run (on whatever the
        # store holds), so that one missing command does not hide how the rest fare.
        try:
            self.r.flushall()
        except redis.ResponseError as error:
            self.target.flush_error = str(error)

    def assertError(self, message, call, *args, **kwargs):
        """call(*args) raises redis.ResponseError with exactly Redis's message (redis-py has
        already taken the "ERR " prefix off)."""
        with self.assertRaises(redis.ResponseError) as caught:
            call(*args, **kwargs)
        self.assertEqual(str(caught.exception), message)

    # --- connection-level commands ---------------------------------------------------------

    def test_ping_echo(self):
        self.assertIs(self.r.ping(), True)
        self.assertEqual(self.r.echo("hello"), b"hello")
        self.assertEqual(self.r.echo(b"\x00\r\n\xff"), b"\x00\r\n\xff")
        self.assertEqual(self.r.echo(""), b"")
        # PING with an argument answers it as a bulk string; redis-py's PING callback would turn
        # that into False (not "PONG"), so the reply is read off the connection itself.
        c = self.client(single_connection_client=True)
        c.connection.send_command("PING", "x\r\n")
        self.assertEqual(c.connection.read_response(), b"x\r\n")

    def test_unknown_command_then_ping_on_the_same_connection(self):
        c = self.client(single_connection_client=True)
        connection_id = c.client_id()
        self.assertError("unknown command 'NOSUCHCOMMAND', with args beginning with: 'a' 'b' ",
                         c.execute_command, "NOSUCHCOMMAND", "a", "b")
        self.assertIs(c.ping(), True)
        self.assertEqual(c.client_id(), connection_id)  # the same connection, still open

    def test_arity_errors(self):
        cases = [
            ("GET",), ("SET", "k"), ("INCR",), ("INCRBY", "k"), ("DECR",), ("DECRBY", "k"),
            ("INCRBYFLOAT", "k"), ("APPEND", "k"), ("STRLEN",), ("SETNX", "k"), ("GETSET", "k"),
            ("GETDEL",), ("MGET",), ("MSET",), ("MSET", "a"), ("MSET", "a", "1", "b"),
            ("MSETNX", "a"), ("DEL",), ("EXISTS",), ("UNLINK",), ("TYPE",), ("DBSIZE", "x"),
            ("SELECT",), ("ECHO",), ("ECHO", "a", "b"), ("PING", "a", "b"), ("GET", "a", "b"),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assertError(f"wrong number of arguments for '{args[0].lower()}' command",
                                 self.r.execute_command, *args)
        # The name in the error is the command's, in lower case, whatever the client sent.
        self.assertError("wrong number of arguments for 'get' command",
                         self.r.execute_command, "GeT")
        self.assertIs(self.r.ping(), True)

    def test_quit_closes_the_connection(self):
        c = self.client(single_connection_client=True)
        self.assertIs(c.quit(), True)
        with self.assertRaises(redis.ConnectionError):
            c.connection.read_response()  # the server closes after its "+OK"
        self.assertIs(self.r.ping(), True)

    def test_select(self):
        self.assertIs(self.r.select(0), True)
        # redis-py sends SELECT 1 as a Redis(db=1) connects, and raises what the server said.
        self.assertError("DB index is out of range", self.client(db=1).ping)
        c = self.client(single_connection_client=True)
        self.assertError("DB index is out of range", c.select, 1)
        self.assertError(NOT_AN_INTEGER, c.select, "abc")
        self.assertIs(c.ping(), True)

    def test_client_name_and_id(self):
        named = self.client(client_name="switchyard-test", single_connection_client=True)
        self.assertEqual(named.client_getname(), "switchyard-test")
        self.assertIs(named.client_setname("renamed"), True)
        self.assertEqual(named.client_getname(), "renamed")
        self.assertError("Client names cannot contain spaces, newlines or special characters.",
                         named.client_setname, "with space")
        self.assertEqual(named.client_getname(), "renamed")
        anonymous = self.client(single_connection_client=True)
        self.assertIsNone(anonymous.client_getname())
        self.assertIsInstance(named.client_id(), int)
        self.assertEqual(named.client_id(), named.client_id())
        self.assertNotEqual(named.client_id(), anonymous.client_id())

    def test_hello_info_config(self):
        hello = self.r.execute_command("HELLO", "2")
        fields = dict(zip(hello[::2], hello[1::2]))
        self.assertEqual(fields[b"proto"], 2)
        self.assertIn(b"server", fields)
        self.assertIn("redis_version", self.r.info())
        self.assertTrue(self.r.config_get("maxclients")["maxclients"].isdigit())
        self.assertEqual(self.r.config_get("no-such-parameter"), {})

    def test_command_introspection(self):
        count = self.r.command_count()
        self.assertIsInstance(count, int)
        commands = self.r.command()  # redis-py's parse_command: a dict by name
        self.assertEqual(len(commands), count)
        for name in ("get", "set", "incr", "incrby", "decr", "decrby", "incrbyfloat", "append",
                     "strlen", "setnx", "getset", "getdel", "mget", "mset", "msetnx", "del",
                     "exists", "unlink", "type", "dbsize", "flushdb", "flushall", "select", "echo",
                     "ping", "quit", "client", "hello", "info", "config", "command"):
            self.assertIn(name, commands)
        info = self.r.execute_command("COMMAND", "INFO", "get")["get"]
        self.assertEqual((info["name"], info["arity"], info["first_key_pos"],
                          info["last_key_pos"], info["step_count"]), ("get", 2, 1, 1, 1))
        self.assertEqual(sorted(info["flags"]), ["fast", "readonly"])
        self.assertEqual(commands["get"]["arity"], 2)
        self.assertEqual(commands["set"]["arity"], -3)
        self.assertEqual(commands["mset"]["arity"], -3)
        # "COMMAND INFO" as one name has no reply callback in redis-py: the raw reply.
        self.assertEqual(self.r.execute_command("COMMAND INFO", "nosuchcommand"), [None])
        # COMMAND DOCS likewise: execute_command("COMMAND", "DOCS", ...) would go through the
        # callback of COMMAND (parse_command), which redis-py 4.3.4 cannot apply to DOCS's reply
        # (a TypeError, on redis-server too); redis-py declines command_docs() altogether.
        docs = self.r.execute_command("COMMAND DOCS", "get")
        self.assertEqual(docs[0], b"get")
        doc = dict(zip(docs[1][::2], docs[1][1::2]))
        self.assertEqual(doc[b"group"], b"string")
        self.assertTrue(doc[b"summary"])
        self.assertIn(b"since", doc)
        self.assertIn(b"complexity", doc)

    # --- strings ---------------------------------------------------------------------------

    def test_get_set(self):
        self.assertIsNone(self.r.get("missing"))
        self.assertIs(self.r.set("k", "v"), True)
        self.assertEqual(self.r.get("k"), b"v")
        self.assertIs(self.r.set("k", "w"), True)
        self.assertEqual(self.r.get("k"), b"w")
        self.assertIs(self.r.set("", "empty key"), True)
        self.assertEqual(self.r.get(""), b"empty key")
        self.assertIs(self.r.set("empty value", ""), True)
        self.assertEqual(self.r.get("empty value"), b"")
        self.assertEqual(self.r.strlen("empty value"), 0)
        self.assertEqual(self.r.exists("empty value"), 1)

    def test_binary_keys_and_values(self):
        key = b"\x00bin\r\nkey\x00\xff"
        value = bytes(range(256)) * 3 + b"\r\n\x00"
        self.assertIs(self.r.set(key, value), True)
        self.assertEqual(self.r.get(key), value)
        self.assertEqual(self.r.strlen(key), len(value))
        self.assertEqual(self.r.append(key, b"\r\n"), len(value) + 2)
        self.assertEqual(self.r.mget([key, b"\r\n", key[:4]]), [value + b"\r\n", None, None])
        self.assertEqual(self.r.exists(key), 1)
        self.assertEqual(self.r.type(key), b"string")
        self.assertEqual(self.r.getdel(key), value + b"\r\n")
        self.assertEqual(self.r.exists(key), 0)
        self.assertIs(self.r.set(b"\r\n", b"\r\n"), True)
        self.assertEqual(self.r.get(b"\r\n"), b"\r\n")

    def test_large_value(self):
        value = os.urandom(512 * 1024)
        self.assertIs(self.r.set("large", value), True)
        self.assertEqual(self.r.get("large"), value)
        self.assertEqual(self.r.strlen("large"), len(value))

    def test_set_nx_xx(self):
        self.assertIs(self.r.set("k", "1", nx=True), True)
        self.assertIsNone(self.r.set("k", "2", nx=True))
        self.assertEqual(self.r.get("k"), b"1")
        self.assertIs(self.r.set("k", "3", xx=True), True)
        self.assertEqual(self.r.get("k"), b"3")
        self.assertIsNone(self.r.set("other", "1", xx=True))
        self.assertEqual(self.r.exists("other"), 0)
        self.assertError(SYNTAX, self.r.set, "k", "4", nx=True, xx=True)
        self.assertError(SYNTAX, self.r.execute_command, "SET", "k", "4", "BOGUS")
        self.assertEqual(self.r.get("k"), b"3")

    def test_set_get_option(self):
        self.assertIsNone(self.r.set("k", "1", get=True))
        self.assertEqual(self.r.get("k"), b"1")
        self.assertEqual(self.r.set("k", "2", get=True), b"1")
        self.assertEqual(self.r.get("k"), b"2")
        # With NX or XX (allowed together with GET since Redis 7.0): the old value, whether or
        # not the condition let the write happen.
        self.assertEqual(self.r.set("k", "3", nx=True, get=True), b"2")
        self.assertEqual(self.r.get("k"), b"2")
        self.assertEqual(self.r.set("k", "4", xx=True, get=True), b"2")
        self.assertEqual(self.r.get("k"), b"4")
        self.assertIsNone(self.r.set("new", "1", xx=True, get=True))
        self.assertEqual(self.r.exists("new"), 0)

    def test_set_expiry_options(self):
        now = int(time.time())
        options = [{"ex": 100}, {"px": 100000}, {"exat": now + 100}, {"pxat": (now + 100) * 1000},
                   {"keepttl": True}]
        for i, option in enumerate(options):
            key = f"expiring{i}"
            with self.subTest(option=option, supports_expiry=self.target.supports_expiry):
                if self.target.supports_expiry:
                    self.assertIs(self.r.set(key, "v", **option), True)
                    self.assertEqual(self.r.get(key), b"v")
                    if "keepttl" in option:  # the key was new: no time to live to keep
                        self.assertEqual(self.r.ttl(key), -1)
                    else:
                        self.assertGreater(self.r.ttl(key), 0)
                else:
                    # Refused with an error that says why, and nothing written.
                    with self.assertRaises(redis.ResponseError) as caught:
                        self.r.set(key, "v", **option)
                    self.assertRegex(str(caught.exception).lower(), "expir")
                    self.assertEqual(self.r.exists(key), 0)
        self.assertIs(self.r.ping(), True)

    def test_incr_decr_family(self):
        # redis-py sends r.incr as INCRBY k 1 and r.decr as DECRBY k 1: INCR and DECR themselves
        # go through execute_command.
        self.assertEqual(self.r.execute_command("INCR", "raw"), 1)
        self.assertEqual(self.r.execute_command("DECR", "raw"), 0)
        self.assertEqual(self.r.execute_command("DECR", "raw"), -1)
        self.assertEqual(self.r.incr("n"), 1)
        self.assertEqual(self.r.incrby("n", 10), 11)
        self.assertEqual(self.r.decr("n"), 10)
        self.assertEqual(self.r.decrby("n", 5), 5)
        self.assertEqual(self.r.incrby("n", -10), -5)
        self.assertEqual(self.r.decrby("n", -5), 0)
        self.assertEqual(self.r.get("n"), b"0")
        self.assertEqual(self.r.decr("fresh"), -1)
        self.assertEqual(self.r.incrby("fresh2", MIN_INT64), MIN_INT64)
        self.assertEqual(self.r.get("fresh2"), str(MIN_INT64).encode())
        self.r.set("s", "41")
        self.assertEqual(self.r.incr("s"), 42)
        self.assertEqual(self.r.type("s"), b"string")

    def test_incr_not_an_integer(self):
        for value in ["abc", "1.5", " 1", "1 ", "01", "+1", "-0", "", "1e3",
                      "9223372036854775808", "-9223372036854775809", "1\x00"]:
            with self.subTest(value=value):
                self.r.set("v", value)
                self.assertError(NOT_AN_INTEGER, self.r.incr, "v")
                self.assertError(NOT_AN_INTEGER, self.r.decrby, "v", 2)
                self.assertEqual(self.r.get("v"), value.encode())
        self.r.set("n", "5")
        for increment in ["1.5", "abc", "", "+1", "01", "9223372036854775808", "1\x00"]:
            with self.subTest(increment=increment):
                self.assertError(NOT_AN_INTEGER, self.r.incrby, "n", increment)
                self.assertError(NOT_AN_INTEGER, self.r.decrby, "n", increment)
        self.assertEqual(self.r.get("n"), b"5")

    def test_incr_overflow(self):
        self.r.set("max", MAX_INT64)
        self.assertError(OVERFLOW, self.r.incr, "max")
        self.assertError(OVERFLOW, self.r.incrby, "max", 1)
        self.assertError(OVERFLOW, self.r.decrby, "max", -1)
        self.assertEqual(self.r.get("max"), str(MAX_INT64).encode())
        self.assertEqual(self.r.incrby("max", -1), MAX_INT64 - 1)
        self.r.set("min", MIN_INT64)
        self.assertError(OVERFLOW, self.r.decr, "min")
        self.assertError(OVERFLOW, self.r.decrby, "min", 1)
        self.assertError(OVERFLOW, self.r.incrby, "min", -1)
        self.assertEqual(self.r.get("min"), str(MIN_INT64).encode())
        # DECRBY's argument cannot be negated when it is the smallest int64 (Redis 7.0).
        self.r.set("zero", 0)
        self.assertError("decrement would overflow", self.r.decrby, "zero", MIN_INT64)
        self.assertEqual(self.r.get("zero"), b"0")

    def test_incrbyfloat_formatting(self):
        # The reply and the stored value are Redis's text: shortest form, no exponent, no
        # trailing zeros, computed in long double.
        cases = [("10.5", "0.1", b"10.6"), ("5.0e3", "0", b"5000"), ("3.0", "0", b"3"),
                 ("-1.5", "1", b"-0.5"), ("1.5e-5", "0", b"0.000015"), ("0.1", "0.2", b"0.3"),
                 ("2", "1e17", b"100000000000000002"), (".5", "0", b"0.5"), ("5.", "0", b"5"),
                 ("7", "-7", b"0"), ("1", "1e-20", b"1")]
        for value, increment, expected in cases:
            with self.subTest(value=value, increment=increment):
                self.r.set("f", value)
                self.assertEqual(self.r.incrbyfloat("f", increment), float(expected))
                self.assertEqual(self.r.get("f"), expected)
        self.assertEqual(self.r.incrbyfloat("missing", 1.5), 1.5)
        self.assertEqual(self.r.get("missing"), b"1.5")
        self.r.set("i", "10")
        self.assertEqual(self.r.incrbyfloat("i", "2.5e1"), 35.0)
        self.assertEqual(self.r.get("i"), b"35")
        self.assertEqual(self.r.incr("i"), 36)  # an integer again, as text

    def test_incrbyfloat_errors(self):
        for value in ["abc", " 1", "1 ", "1e", "", "nan", "1\x00"]:
            with self.subTest(value=value):
                self.r.set("f", value)
                self.assertError(NOT_A_FLOAT, self.r.incrbyfloat, "f", 1)
                self.assertEqual(self.r.get("f"), value.encode())
        self.r.set("f", "1")
        for increment in ["abc", "", "nan", "1.5x", "1\x00"]:
            with self.subTest(increment=increment):
                self.assertError(NOT_A_FLOAT, self.r.incrbyfloat, "f", increment)
        for increment in ["inf", "-inf"]:
            with self.subTest(increment=increment):
                self.assertError(NAN_OR_INF, self.r.incrbyfloat, "f", increment)
        self.r.set("inf", "inf")
        self.assertError(NAN_OR_INF, self.r.incrbyfloat, "inf", 0)
        self.assertEqual(self.r.get("f"), b"1")

    def test_incrbyfloat_long_double_range(self):
        # Redis computes in long double: 1e308 + 1e308 does not overflow there, and is stored
        # in full (309 digits), though a double (as redis-py parses the reply) reads it as inf.
        self.r.set("big", "1e308")
        self.r.incrbyfloat("big", "1e308")
        stored = self.r.get("big")
        self.assertEqual(len(stored), 309)
        self.assertTrue(stored.startswith(b"1999999999999999999"))
        # Hexadecimal input is accepted, as strtold accepts it.
        self.r.set("hex", "0x10")
        self.assertEqual(self.r.incrbyfloat("hex", 0), 16.0)
        self.assertEqual(self.r.get("hex"), b"16")

    def test_append_strlen(self):
        self.assertEqual(self.r.strlen("s"), 0)
        self.assertEqual(self.r.append("s", "Hello"), 5)
        self.assertEqual(self.r.append("s", " World"), 11)
        self.assertEqual(self.r.append("s", ""), 11)
        self.assertEqual(self.r.get("s"), b"Hello World")
        self.assertEqual(self.r.strlen("s"), 11)
        self.r.set("n", 12)
        self.assertEqual(self.r.append("n", 3), 3)
        self.assertEqual(self.r.incr("n"), 124)

    def test_setnx_getset_getdel(self):
        self.assertIs(self.r.setnx("k", "1"), True)
        self.assertIs(self.r.setnx("k", "2"), False)
        self.assertEqual(self.r.get("k"), b"1")
        self.assertEqual(self.r.getset("k", "3"), b"1")
        self.assertEqual(self.r.get("k"), b"3")
        self.assertIsNone(self.r.getset("new", "x"))
        self.assertEqual(self.r.get("new"), b"x")
        self.assertEqual(self.r.getdel("k"), b"3")
        self.assertIsNone(self.r.get("k"))
        self.assertIsNone(self.r.getdel("k"))

    def test_mget_mset_msetnx(self):
        self.assertIs(self.r.mset({"a": "1", "b": "2", b"c\x00": b"\x00"}), True)
        self.assertEqual(self.r.mget("a", "missing", "b", b"c\x00"), [b"1", None, b"2", b"\x00"])
        self.assertEqual(self.r.mget(["a"]), [b"1"])
        # MSET with a key twice: the last value wins.
        self.assertTrue(self.r.execute_command("MSET", "d", "1", "d", "2"))
        self.assertEqual(self.r.get("d"), b"2")
        self.assertIs(self.r.msetnx({"x": "1", "a": "changed"}), False)
        self.assertEqual(self.r.mget("x", "a"), [None, b"1"])
        self.assertIs(self.r.msetnx({"x": "1", "y": "2"}), True)
        self.assertEqual(self.r.mget("x", "y"), [b"1", b"2"])

    def test_del_exists_unlink(self):
        self.r.mset({"a": "1", "b": "2", "c": "3", "d": "4"})
        self.assertEqual(self.r.exists("a"), 1)
        self.assertEqual(self.r.exists("a", "a", "b", "missing"), 3)  # repeats count
        self.assertEqual(self.r.delete("a", "b", "missing", "a"), 2)
        self.assertEqual(self.r.exists("a", "b"), 0)
        self.assertEqual(self.r.unlink("c", "missing"), 1)
        self.assertEqual(self.r.unlink("missing"), 0)
        self.assertEqual(self.r.exists("c", "d"), 1)

    def test_type_dbsize_flushdb(self):
        self.assertEqual(self.r.dbsize(), 0)
        self.assertEqual(self.r.type("k"), b"none")
        self.r.mset({f"k{i}": i for i in range(25)})
        self.assertEqual(self.r.type("k3"), b"string")
        self.assertEqual(self.r.dbsize(), 25)
        self.assertIs(self.r.flushdb(), True)
        self.assertEqual(self.r.dbsize(), 0)
        self.assertIs(self.r.flushdb(asynchronous=True), True)

    def test_flushall(self):
        self.r.mset({"a": "1", "b": "2"})
        self.assertIs(self.r.flushall(asynchronous=True), True)
        self.assertEqual(self.r.dbsize(), 0)
        self.r.set("a", "1")
        self.assertIs(self.r.execute_command("FLUSHALL", "SYNC"), True)
        self.assertEqual(self.r.dbsize(), 0)
        self.assertError(SYNTAX, self.r.execute_command, "FLUSHALL", "BOGUS")

    def test_keys_are_shared_across_connections(self):
        # Eight connections (for prefork, likely as many processes) each incrementing the same
        # counter, then one reading it and another deleting it.
        clients = [self.client(single_connection_client=True) for _ in range(8)]
        for _ in range(50):
            for c in clients:
                c.incr("shared")
        self.assertEqual(clients[3].get("shared"), b"400")
        self.assertEqual(clients[5].delete("shared"), 1)
        self.assertEqual(clients[0].exists("shared"), 0)

    # --- pipelines and transactions --------------------------------------------------------

    def test_pipeline_many_commands(self):
        pipe = self.r.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"p{i}", i).incr(f"p{i}").get(f"p{i}")
        results = pipe.execute()
        self.assertEqual(len(results), 1500)
        for i in range(500):
            self.assertEqual(results[3 * i:3 * i + 3], [True, i + 1, str(i + 1).encode()])
        self.assertEqual(self.r.dbsize(), 500)

        # An error in the middle: in place among the replies, every other command done.
        pipe = self.r.pipeline(transaction=False)
        pipe.set("text", "abc").incr("text").append("text", "d").incrbyfloat("text", 1).strlen(
            "text").mget("p0", "p499", "nope").exists("p1", "p2").delete("p0").echo(b"\x00")
        results = pipe.execute(raise_on_error=False)
        self.assertEqual(len(results), 9)
        self.assertIs(results[0], True)
        self.assertIsInstance(results[1], redis.ResponseError)
        self.assertIn(NOT_AN_INTEGER, str(results[1]))
        self.assertEqual(results[2], 4)
        self.assertIsInstance(results[3], redis.ResponseError)
        self.assertIn(NOT_A_FLOAT, str(results[3]))
        self.assertEqual(results[4:], [4, [b"1", b"500", None], 2, 1, b"\x00"])

        # With raise_on_error (the default) the first error is raised, after all have run.
        pipe = self.r.pipeline(transaction=False)
        pipe.incr("text").set("after", "yes")
        with self.assertRaises(redis.ResponseError):
            pipe.execute()
        self.assertEqual(self.r.get("after"), b"yes")
        self.assertIs(self.r.ping(), True)

    def test_transaction_pipeline(self):
        pipe = self.r.pipeline(transaction=True)
        pipe.set("t", "1").incr("t").get("t")
        if self.target.supports_multi:
            self.assertEqual(pipe.execute(), [True, 2, b"2"])
        else:
            # redis-py sends MULTI, the commands and EXEC in one write. Without MULTI the server
            # refuses MULTI and EXEC (unknown commands) and runs the commands in between as plain
            # commands; redis-py reads every reply, then raises EXEC's error.
            with self.assertRaises(redis.ResponseError) as caught:
                pipe.execute()
            self.assertIn("unknown command", str(caught.exception))
        # Either way the commands ran, and the connection is in step for the next command.
        self.assertEqual(self.r.get("t"), b"2")
        self.assertIs(self.r.ping(), True)
        self.assertEqual(self.r.incr("t"), 3)


if __name__ == "__main__":
    try:
        sys.exit(targets.main(RedisPyTest, __doc__))
    except KeyboardInterrupt:
        sys.exit("interrupted: the servers started were stopped")
