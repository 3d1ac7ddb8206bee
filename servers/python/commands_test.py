"""The commands and the store, without a socket: the scripts of tests/commands_test.cc, run
through the same Session every model uses, with the replies the C++ models give."""
import unittest

import peer
from metrics import Metrics
from session import CLOSE, NEED_INPUT, WAIT, Session
from store import ENTRY_OVERHEAD, OutOfMemory, Store


def multibulk(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg if isinstance(arg, bytes) else arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


class ServiceCase(unittest.TestCase):
    flags = []

    def setUp(self):
        self.config = peer.parse_flags(["--model", "asyncio"] + self.flags)
        self.metrics = Metrics.private()
        self.service = peer.make_service(self.config, self.metrics)
        self.session = Session(self.service)

    def run_raw(self, data):
        """Feeds `data`, returns (the replies, the last step)."""
        self.session.feed(data)
        step = self.session.process()
        while step is WAIT:
            self.session.finish_wait()
            step = self.session.process()
        return bytes(self.session.take_output()), step

    def script(self, pairs):
        for args, expected in pairs:
            with self.subTest(args=args):
                reply, step = self.run_raw(multibulk(*args))
                self.assertEqual(reply, expected)
                self.assertIs(step, NEED_INPUT)


class CommandsTest(ServiceCase):
    def test_counters(self):
        self.script([
            (["INCR", "n"], b":1\r\n"),
            (["INCRBY", "n", "-3"], b":-2\r\n"),
            (["DECRBY", "n", "-9223372036854775808"], b"-ERR decrement would overflow\r\n"),
            (["SET", "m", "-9223372036854775808"], b"+OK\r\n"),
            (["DECR", "m"], b"-ERR increment or decrement would overflow\r\n"),
            (["SET", "z", "007"], b"+OK\r\n"),
            (["INCR", "z"], b"-ERR value is not an integer or out of range\r\n"),
            (["INCRBY", "n"], b"-ERR wrong number of arguments for 'incrby' command\r\n"),
        ])

    def test_incrbyfloat_reads_and_formats_as_redis(self):
        self.script([
            (["INCRBYFLOAT", "f", "10.5"], b"$4\r\n10.5\r\n"),
            (["INCRBYFLOAT", "f", "0.1"], b"$4\r\n10.6\r\n"),
            (["INCRBYFLOAT", "f", "-10.6"], b"$1\r\n0\r\n"),
            (["INCRBYFLOAT", "g", "5.0e3"], b"$4\r\n5000\r\n"),
            (["INCRBYFLOAT", "h", "0x10"], b"$2\r\n16\r\n"),
            (["INCRBYFLOAT", "h", "-0.25"], b"$5\r\n15.75\r\n"),
            (["INCRBYFLOAT", "tiny", "1e-20"], b"$1\r\n0\r\n"),
            (["INCRBYFLOAT", "f", " 1"], b"-ERR value is not a valid float\r\n"),
            (["INCRBYFLOAT", "f", "nan"], b"-ERR value is not a valid float\r\n"),
            (["INCRBYFLOAT", "f", "inf"], b"-ERR increment would produce NaN or Infinity\r\n"),
            (["INCRBYFLOAT", "f", "1e5000"], b"-ERR value is not a valid float\r\n"),
            (["INCRBYFLOAT", "f", b"1\0"], b"-ERR value is not a valid float\r\n"),
        ])

    def test_set_options_and_expiry(self):
        expiry = b": key expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported; keys stay until " \
                 b"deleted\r\n"
        self.script([
            (["SET", "k", "v"], b"+OK\r\n"),
            (["SET", "k", "v2", "NX"], b"$-1\r\n"),
            (["SET", "k", "v2", "nx", "GET"], b"$1\r\nv\r\n"),
            (["SET", "k", "v3", "XX", "GET"], b"$1\r\nv\r\n"),
            (["SET", "k", "v", "NX", "XX"], b"-ERR syntax error\r\n"),
            (["SET", "k", "v", "EX"], b"-ERR syntax error\r\n"),
            (["SET", "k", "v", "px", "10", "NX"], b"-ERR SET px" + expiry),
            (["SET", "k", "v", "KEEPTTL"], b"-ERR SET KEEPTTL" + expiry),
            (["GET", "k"], b"$2\r\nv3\r\n"),
        ])

    def test_string_and_keyspace_commands(self):
        self.script([
            (["APPEND", "a", "hello"], b":5\r\n"),
            (["STRLEN", "a"], b":5\r\n"),
            (["GETSET", "b", "y"], b"$-1\r\n"),
            (["GETDEL", "b"], b"$1\r\ny\r\n"),
            (["MSET", "m1", "1", "m2", "2", "m1", "3"], b"+OK\r\n"),
            (["MGET", "m1", "m2", "m3"], b"*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"),
            (["MSET", "m1", "1", "m2"], b"-ERR wrong number of arguments for 'mset' command\r\n"),
            (["MSETNX", "m1", "1", "m9", "9"], b":0\r\n"),
            (["EXISTS", "m1", "m1", "m9"], b":2\r\n"),
            (["TYPE", "m1"], b"+string\r\n"),
            (["TYPE", "nope"], b"+none\r\n"),
            (["DBSIZE"], b":3\r\n"),
            (["FLUSHDB", "foo"], b"-ERR syntax error\r\n"),
            (["FLUSHALL", "ASYNC"], b"+OK\r\n"),
            (["DBSIZE"], b":0\r\n"),
            (["SELECT", "1"], b"-ERR DB index is out of range\r\n"),
            (["SELECT", "99999999999"], b"-ERR value is out of range, value must between "
                                        b"-2147483648 and 2147483647\r\n"),
        ])

    def test_connection_commands(self):
        self.script([
            (["CLIENT", "GETNAME"], b"$-1\r\n"),
            (["CLIENT", "SETNAME", "a b"], b"-ERR Client names cannot contain spaces, newlines or "
                                          b"special characters.\r\n"),
            (["CLIENT", "SETNAME"], b"-ERR wrong number of arguments for 'client|setname' "
                                    b"command\r\n"),
            (["HELLO", "3"], b"-NOPROTO unsupported protocol version\r\n"),
            (["HELLO", "2", "FOO"], b"-ERR Syntax error in HELLO option 'FOO'\r\n"),
            (["CONFIG", "GET", "maxclients"], b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"),
            (["COMMAND", "COUNT", "x"], b"-ERR wrong number of arguments for 'command|count' "
                                        b"command\r\n"),
            (["NOSUCH", "a", "b"], b"-ERR unknown command 'NOSUCH', with args beginning with: "
                                   b"'a' 'b' \r\n"),
            (["PING", "a", "b"], b"-ERR wrong number of arguments for 'ping' command\r\n"),
        ])
        reply, _ = self.run_raw(multibulk("COMMAND", "INFO", "mset"))
        self.assertTrue(reply.startswith(b"*1\r\n*10\r\n$4\r\nmset\r\n:-3\r\n"), reply)
        reply, _ = self.run_raw(multibulk("COMMAND", "DOCS", "get"))
        self.assertTrue(reply.startswith(b"*2\r\n$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$22\r\n"
                                         b"Get the value of a key\r\n"), reply)

    def test_simulated_work(self):
        self.session.feed(multibulk("ECHO", "before") + multibulk("SY.WAIT", "2500")
                          + multibulk("ECHO", "after"))
        self.assertIs(self.session.process(), WAIT)
        self.assertEqual(self.session.wait_seconds, 0.0025)
        self.session.finish_wait()
        self.assertIs(self.session.process(), NEED_INPUT)
        self.assertEqual(bytes(self.session.take_output()),
                         b"$6\r\nbefore\r\n+OK\r\n$5\r\nafter\r\n")
        self.script([
            (["SY.CPU", "1000"], b"+OK\r\n"),
            (["SY.BLOCK", "1000"], b"+OK\r\n"),
            (["SY.WAIT", "-1"], b"-ERR usec must be an integer from 0 to 60000000\r\n"),
        ])

    def test_quit_http_and_protocol_errors_close(self):
        self.assertEqual(self.run_raw(b"PING\r\nQUIT\r\nPING\r\n"), (b"+PONG\r\n+OK\r\n", CLOSE))
        self.setUp()
        self.assertEqual(self.run_raw(b"POST / HTTP/1.1\r\n"), (b"", CLOSE))
        self.setUp()
        self.assertEqual(self.run_raw(b"GET / HTTP/1.1\r\nHost: x\r\n"),
                         (b"-ERR wrong number of arguments for 'get' command\r\n", CLOSE))
        self.setUp()
        self.assertEqual(self.run_raw(b"PING\r\n*1\r\nfoo\r\n"),
                         (b"+PONG\r\n-ERR Protocol error: expected '$', got 'f'\r\n", CLOSE))
        self.assertEqual(self.metrics.value("errors", self.metrics.PROTOCOL), 1)


class LimitsTest(ServiceCase):
    flags = ["--store-bytes", "1m", "--query-buffer-bytes", "1k", "--output-buffer-bytes", "1k"]

    def test_full_store_answers_oom_and_loses_nothing(self):
        value = "v" * (64 << 10)
        stored = 0
        while True:
            reply, _ = self.run_raw(multibulk("SET", "key%d" % stored, value))
            if reply != b"+OK\r\n":
                break
            stored += 1
        self.assertEqual(reply, b"-OOM command not allowed when used memory > 'store-bytes'.\r\n")
        self.assertTrue(0 < stored < 16)
        self.assertEqual(self.run_raw(multibulk("INCR", "c"))[0], b":1\r\n")
        self.assertEqual(self.run_raw(multibulk("DEL", "key0"))[0], b":1\r\n")
        self.assertEqual(self.run_raw(multibulk("SET", "key0", value))[0], b"+OK\r\n")
        self.assertEqual(self.metrics.value("errors", self.metrics.OOM), 1)

    def test_query_buffer_closes_without_reply(self):
        self.assertEqual(self.run_raw(b"*2\r\n$3\r\nSET\r\n$100000\r\n" + b"x" * 2000),
                         (b"", CLOSE))
        self.assertEqual(self.metrics.value("errors", self.metrics.LIMIT), 1)

    def test_output_buffer_drops_a_client_owed_too_much(self):
        self.run_raw(multibulk("SET", "big", "x" * 2000))
        self.assertEqual(self.run_raw(multibulk("GET", "big") * 2), (b"", CLOSE))


class StoreTest(unittest.TestCase):
    def test_accounting(self):
        store = Store(2 * (ENTRY_OVERHEAD + 10))
        store.set(b"k1", b"12345678")
        store.set(b"k2", b"12345678")
        self.assertEqual(store.used_bytes, 2 * (ENTRY_OVERHEAD + 10))
        with self.assertRaises(OutOfMemory):
            store.set(b"k1", b"123456789")
        self.assertEqual(store.get(b"k1"), b"12345678")  # unchanged
        store.set(b"k1", b"1")  # smaller always fits
        with self.assertRaises(OutOfMemory):
            store.mset([(b"a", b"1"), (b"b", b"2")])
        self.assertEqual(store.mget([b"a", b"b"]), [None, None])  # all or nothing
        self.assertEqual(store.delete([b"k1", b"k1", b"x"]), 1)
        store.clear()
        self.assertEqual((len(store), store.used_bytes), (0, 0))


if __name__ == "__main__":
    unittest.main()
