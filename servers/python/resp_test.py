"""The parser against Redis's framing and errors: the cases of servers/common/resp_parser_test.cc
and of Redis's tests/unit/protocol.tcl that tests/conformance_test.cc and fault_test.cc send."""
import unittest

import resp
from resp import Parser, ProtocolError, parse_int64, split_args


def parse_all(data, parser=None, chunk=None):
    """Every request in `data` (fed whole, or `chunk` bytes at a time), then the error if any."""
    parser = parser or Parser()
    buf = bytearray()
    pos = 0
    requests = []
    pieces = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    try:
        for piece in pieces:
            buf += piece
            while True:
                args, pos = parser.parse(buf, pos)
                if args is None:
                    break
                requests.append(args)
    except ProtocolError as error:
        requests.append(str(error))
    return requests


class ParserTest(unittest.TestCase):
    def test_multibulk_and_inline_pipelined(self):
        data = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nPING\r\nset k  'a b'\r\n"
        expected = [[b"ECHO", b"hello"], [b"PING"], [b"set", b"k", b"a b"]]
        self.assertEqual(parse_all(data), expected)
        self.assertEqual(parse_all(data, chunk=1), expected)  # a byte at a time

    def test_binary_and_empty_bulk(self):
        self.assertEqual(parse_all(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\0\r\n\xff\r\n"),
                         [[b"SET", b"", b"\0\r\n\xff"]])

    def test_empty_requests_are_skipped(self):
        data = b"\r\n\r\n\nPING\r\n*-10\r\nPING\r\n*0\r\n*1\r\n$4\r\nPING\r\n"
        self.assertEqual(parse_all(data), [[b"PING"]] * 3)

    def test_protocol_errors(self):
        cases = {
            b"*3000000000\r\n": "invalid multibulk length",
            b"*abc\r\n": "invalid multibulk length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n": "invalid bulk length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n": "invalid bulk length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n": "expected '$', got 'f'",
            b"*1\r\n\r\n": "expected '$', got ' '",
            b'set """test-key""" test-value\r\nping\r\n': "unbalanced quotes in request",
            b"a" * 70000: "too big inline request",
            b"*" + b"1" * 70000: "too big mbulk count string",
            b"*1\r\n$" + b"1" * 70000: "too big bulk count string",
        }
        for data, message in cases.items():
            with self.subTest(data=data[:40]):
                self.assertEqual(parse_all(data)[-1], "ERR Protocol error: " + message)

    def test_limits_are_flags(self):
        parser = Parser(max_bulk_bytes=1024, max_inline_bytes=1024)
        self.assertEqual(parse_all(b"*1\r\n$1025\r\n", parser)[-1],
                         "ERR Protocol error: invalid bulk length")
        # A complete line longer than the limit that arrived whole is accepted, as in Redis.
        line = b"ECHO " + b"a" * 2000 + b"\r\n"
        self.assertEqual(parse_all(line, Parser(max_inline_bytes=1024)), [[b"ECHO", b"a" * 2000]])
        self.assertEqual(parse_all(b"a" * 2000, Parser(max_inline_bytes=1024))[-1],
                         "ERR Protocol error: too big inline request")

    def test_nul_hides_the_line_end(self):
        # Redis's "protocol desync" regression: junk after a NUL is cut off at the inline limit.
        for prefix in (b"\0", b"*\0", b"$\0"):
            junk = prefix + (b"A" * 1024 + b"\n") * 80
            self.assertIn("Protocol error", parse_all(junk)[-1])

    def test_partial_bulk_is_buffered_not_rescanned(self):
        parser = Parser()
        buf = bytearray(b"*2\r\n$3\r\nSET\r\n$10\r\nhello")
        args, pos = parser.parse(buf, 0)
        self.assertIsNone(args)
        self.assertEqual(parser.buffered_bytes, 3)  # SET is consumed, the value waits
        buf += b"world\r\n"
        self.assertEqual(parser.parse(buf, pos), ([b"SET", b"helloworld"], len(buf)))

    def test_split_args_quirks(self):
        self.assertEqual(split_args(b'a "b c" \'d e\''), [b"a", b"b c", b"d e"])
        self.assertEqual(split_args(b'"\\x41\\n" x\vy'), [b"A\n", b"x\vy"])
        self.assertEqual(split_args(b'foo"bar baz"'), [b"foobar baz"])
        self.assertIsNone(split_args(b'"abc"def'))
        self.assertIsNone(split_args(b"'abc"))
        self.assertEqual(split_args(b"a\0 b c"), [b"a"])

    def test_parse_int64_is_strict(self):
        self.assertEqual(parse_int64(b"-9223372036854775808"), -2**63)
        for bad in (b"", b"+1", b"01", b"-0", b" 1", b"1 ", b"9223372036854775808", b"1.0"):
            self.assertIsNone(parse_int64(bad), bad)


class WriterTest(unittest.TestCase):
    def test_replies(self):
        out = bytearray()
        resp.simple(out, b"OK")
        resp.error(out, "ERR bad\r\nthing")
        resp.integer(out, -5)
        resp.bulk(out, b"a\r\n")
        resp.bulk_or_nil(out, None)
        resp.array(out, 2)
        self.assertEqual(bytes(out),
                         b"+OK\r\n-ERR bad  thing\r\n:-5\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n")


if __name__ == "__main__":
    unittest.main()
