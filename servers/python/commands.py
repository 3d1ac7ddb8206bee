"""The commands of docs/service.md and their execution against the store, with Redis 7.0's
replies and error texts as the C++ models give them (servers/common/commands.cc,
key_commands.cc). Model-agnostic: a command never waits here. SY.WAIT is handed back to the
model, which waits its own way; SY.CPU and SY.BLOCK run here, on whatever runs the request,
with the blocking call the model supplies (gevent passes the unpatched time.sleep).
"""
import itertools
import os
import time

import command_table
import long_double
import resp
from command_table import INDEX, TABLE, UNKNOWN
from resp import parse_int64
from store import OutOfMemory

VERSION = b"dev"
MAX_SIMULATED_MICROS = 60_000_000  # so a typo cannot park a connection for hours

NOT_INTEGER = "ERR value is not an integer or out of range"
OVERFLOW = "ERR increment or decrement would overflow"
NOT_FLOAT = "ERR value is not a valid float"
OOM = "OOM command not allowed when used memory > 'store-bytes'."
SYNTAX = "ERR syntax error"
USEC = "ERR usec must be an integer from 0 to %d" % MAX_SIMULATED_MICROS
EXPIRY = (": key expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported; keys stay until "
          "deleted")

CLOSE = "close"  # what execute() returns after QUIT or an HTTP line: close the connection


class Connection:
    """What a connection's own commands read or change about it: CLIENT ID, CLIENT SETNAME."""
    __slots__ = ("id", "name")

    def __init__(self, connection_id):
        self.id = connection_id
        self.name = None


class RequestFailed(Exception):
    """Raised by the SWITCHYARD_TEST_FAIL_ECHO hook: a failure in one connection's handling."""


def burn_cpu(micros):
    """SY.CPU: burns `micros` of this thread's CPU time in Python bytecode, so it holds the GIL as
    any Python work does (other threads get it only at the interpreter's switch interval).
    Thread CPU time, not wall time: a preempted request still burns what it asked for."""
    deadline = time.thread_time_ns() + micros * 1000
    clock = time.thread_time_ns
    while clock() < deadline:
        for _ in range(64):
            pass


class _Refused(Exception):
    """Raised inside a store update to leave the key unchanged and reply this error."""


class Service:
    """The command table bound to one server's store, limits and metrics.

    execute(connection, args, out) appends the reply to `out` and returns None, CLOSE, or for
    SY.WAIT the seconds to wait (the model appends "+OK" after its wait).
    """

    def __init__(self, config, store, metrics, blocking_sleep=time.sleep):
        self.config = config
        self.store = store
        self.metrics = metrics
        self.blocking_sleep = blocking_sleep
        self.fail_echo = os.environb.get(b"SWITCHYARD_TEST_FAIL_ECHO")
        self._ids = itertools.count(1)
        self._handlers = [getattr(self, "_" + spec.name.decode().replace(".", "_"))
                          for spec in TABLE]

    def new_connection(self):
        # Python threads switch between bytecodes, and `+=` on an attribute is several, so ids
        # come from itertools.count, whose next() is one C call: no two threads get the same.
        return Connection(next(self._ids))

    # --- errors ------------------------------------------------------------------------------

    def client_error(self, out, message):
        """One error reply, counted as the client's mistake (arguments, syntax, not a number)."""
        self.metrics.error(self.metrics.WRONG_ARGUMENTS)
        resp.error(out, message)

    def oom(self, out):
        self.metrics.error(self.metrics.OOM)
        resp.error(out, OOM)

    # --- dispatch ----------------------------------------------------------------------------

    def execute(self, connection, args, out):
        """Runs one request. Returns (command index for the metrics, outcome)."""
        name = args[0].lower()
        index = INDEX.get(name)
        if index is None:
            if name == b"post" or name == b"host:":
                # Redis 7's securityWarningCommand(): an HTTP client, or a browser tricked into
                # talking to us (the cross-protocol attack). Close at once, without a reply.
                self.metrics.error(self.metrics.PROTOCOL)
                return UNKNOWN, CLOSE
            self.metrics.error(self.metrics.UNKNOWN_COMMAND)
            quoted = b""
            for argument in args[1:]:
                if len(quoted) >= 128:
                    break
                quoted += b"'" + argument[:128 - len(quoted)] + b"' "
            resp.error(out, b"ERR unknown command '%s', with args beginning with: %s"
                       % (args[0][:128], quoted))
            return UNKNOWN, None
        spec = TABLE[index]
        argc = len(args)
        arity = spec.arity
        if ((arity > 0 and argc != arity) or (arity < 0 and argc < -arity)
                or (name == b"ping" and argc > 2)
                or ((name == b"mset" or name == b"msetnx") and argc % 2 == 0)):
            self.metrics.error(self.metrics.WRONG_ARGUMENTS)
            resp.error(out, b"ERR wrong number of arguments for '%s' command" % spec.name)
            return index, None
        return index, self._handlers[index](connection, args, out)

    # --- connection and server commands ------------------------------------------------------

    def _ping(self, connection, args, out):
        if len(args) == 1:
            out += resp.PONG
        else:
            resp.bulk(out, args[1])

    def _echo(self, connection, args, out):
        if self.fail_echo is not None and args[1] == self.fail_echo:
            raise RequestFailed("ECHO %s failed (SWITCHYARD_TEST_FAIL_ECHO)"
                                % args[1].decode("latin-1"))
        resp.bulk(out, args[1])

    def _quit(self, connection, args, out):
        out += resp.OK
        return CLOSE

    def _command(self, connection, args, out):
        if not command_table.command_command(args, out):
            self.metrics.error(self.metrics.WRONG_ARGUMENTS)

    def _config(self, connection, args, out):
        if args[1].lower() != b"get" or len(args) < 3:
            self.client_error(out, "ERR only CONFIG GET is supported")
            return
        # The handful of parameters clients ask for at start (redis-benchmark reads "save" and
        # "appendonly"); anything else matches nothing, as an unknown glob does in Redis.
        config = self.config
        params = [(b"save", b""), (b"appendonly", b"no"), (b"databases", b"1"),
                  (b"maxclients", b"%d" % config.max_clients),
                  (b"maxmemory", b"%d" % config.store_bytes),
                  (b"proto-max-bulk-len", b"%d" % config.max_bulk_bytes),
                  (b"client-query-buffer-limit", b"%d" % config.query_buffer_bytes)]
        found = []
        for pattern in args[2:]:
            for param in params:
                if (pattern == b"*" or pattern.lower() == param[0]) and param not in found:
                    found.append(param)
        resp.array(out, 2 * len(found))
        for name, value in found:
            resp.bulk(out, name)
            resp.bulk(out, value)

    @staticmethod
    def _set_name(name, connection, out):
        """Redis's clientSetName(): printable ASCII without spaces; an empty name clears it."""
        if any(c < 0x21 or c > 0x7E for c in name):
            resp.error(out, "ERR Client names cannot contain spaces, newlines or special "
                            "characters.")
            return False
        connection.name = name or None
        return True

    def _client(self, connection, args, out):
        sub = args[1].lower()

        def arity(expected):
            if len(args) == expected:
                return True
            resp.error(out, b"ERR wrong number of arguments for 'client|%s' command" % sub)
            return False

        if sub == b"setname":
            if arity(3) and self._set_name(args[2], connection, out):
                out += resp.OK
        elif sub == b"setinfo":
            if arity(4):
                out += resp.OK
        elif sub == b"getname":
            if arity(2):
                resp.bulk_or_nil(out, connection.name)
        elif sub == b"id":
            if arity(2):
                resp.integer(out, connection.id)
        else:
            resp.error(out, b"ERR unknown subcommand '%s'. Try CLIENT HELP." % args[1][:128])

    def _hello(self, connection, args, out):
        """HELLO [protover [AUTH username password] [SETNAME clientname]]: RESP2 only; AUTH is
        accepted as Redis's passwordless default user accepts it."""
        if len(args) > 1:
            version = parse_int64(args[1])
            if version is None:
                resp.error(out, "ERR Protocol version is not an integer or out of range")
                return
            if version != 2:
                resp.error(out, "NOPROTO unsupported protocol version")
                return
        name = None
        i = 2
        while i < len(args):
            more = len(args) - 1 - i
            option = args[i].lower()
            if option == b"auth" and more >= 2:
                i += 2
            elif option == b"setname" and more >= 1:
                i += 1
                name = args[i]
            else:
                resp.error(out, b"ERR Syntax error in HELLO option '%s'" % args[i][:128])
                return
            i += 1
        if name is not None and not self._set_name(name, connection, out):
            return
        # RESP2 has no map type: HELLO's map is a flat array of field, value pairs, as in Redis.
        resp.array(out, 14)
        for field, value in ((b"server", b"switchyard"), (b"version", VERSION)):
            resp.bulk(out, field)
            resp.bulk(out, value)
        resp.bulk(out, b"proto")
        resp.integer(out, 2)
        resp.bulk(out, b"id")
        resp.integer(out, connection.id)
        for field, value in ((b"mode", b"standalone"), (b"role", b"master")):
            resp.bulk(out, field)
            resp.bulk(out, value)
        resp.bulk(out, b"modules")
        resp.array(out, 0)

    def _select(self, connection, args, out):
        """SELECT: database 0 is the only one, as in a Redis started with --databases 1."""
        number = parse_int64(args[1])
        if number is None:
            self.client_error(out, NOT_INTEGER)
        elif not -2**31 <= number < 2**31:
            self.client_error(out, "ERR value is out of range, value must between -2147483648 "
                                   "and 2147483647")
        elif number != 0:
            self.client_error(out, "ERR DB index is out of range")
        else:
            out += resp.OK

    def _info(self, connection, args, out):
        text = (b"# Server\r\nredis_version:7.0.0\r\nswitchyard_version:%s\r\n"
                b"switchyard_model:%s\r\nprocess_id:%d\r\n\r\n# Stats\r\nstore_lock_repairs:0\r\n"
                b"store_allocator_damaged:0\r\n\r\n# Keyspace\r\n"
                % (VERSION, self.config.model.encode(), os.getpid()))
        keys = len(self.store)
        if keys:  # as Redis, a database is listed only when it holds keys
            text += b"db0:keys=%d,expires=0,avg_ttl=0\r\n" % keys
        resp.bulk(out, text)

    # --- simulated work ----------------------------------------------------------------------

    def _micros(self, args, out):
        micros = parse_int64(args[1])
        if micros is None or not 0 <= micros <= MAX_SIMULATED_MICROS:
            self.metrics.error(self.metrics.WRONG_ARGUMENTS)
            resp.error(out, USEC)
            return None
        return micros

    def _sy_cpu(self, connection, args, out):
        micros = self._micros(args, out)
        if micros is not None:
            burn_cpu(micros)
            out += resp.OK

    def _sy_wait(self, connection, args, out):
        micros = self._micros(args, out)
        if micros is not None:
            return micros / 1e6  # the model waits, then replies +OK

    def _sy_block(self, connection, args, out):
        micros = self._micros(args, out)
        if micros is not None:
            # A real blocking system call on whatever thread runs the request: in an event loop
            # it stalls every connection of that loop, which is what this command is for.
            self.blocking_sleep(micros / 1e6)
            out += resp.OK

    # --- commands on keys --------------------------------------------------------------------

    def _get(self, connection, args, out):
        resp.bulk_or_nil(out, self.store.get(args[1]))

    def _set(self, connection, args, out):
        """SET key value [NX|XX] [GET]. The expiry options are refused by name rather than
        ignored: a client that asked for a key to expire must not believe it will."""
        condition = None
        get = False
        expiry = None  # the one expiry option given (Redis allows one kind)
        i = 3
        while i < len(args):
            option = args[i]
            lower = option.lower()
            has_next = i + 1 < len(args)
            if lower == b"nx" and condition != "xx":
                condition = "nx"
            elif lower == b"xx" and condition != "nx":
                condition = "xx"
            elif lower == b"get":
                get = True
            elif lower == b"keepttl" and (expiry is None or expiry.lower() == b"keepttl"):
                expiry = option
            elif (lower in (b"ex", b"px", b"exat", b"pxat") and has_next
                  and (expiry is None or expiry.lower() == lower)):
                expiry = option
                i += 1  # its time
            else:
                self.client_error(out, SYNTAX)
                return
            i += 1
        if expiry is not None:
            self.client_error(out, b"ERR SET " + expiry + EXPIRY.encode())
            return
        try:
            written, old = self.store.set(args[1], args[2], condition)
        except OutOfMemory:
            self.oom(out)
            return
        if get:
            resp.bulk_or_nil(out, old)
        elif written:
            out += resp.OK
        else:
            out += resp.NIL

    def _setnx(self, connection, args, out):
        try:
            written, _ = self.store.set(args[1], args[2], "nx")
        except OutOfMemory:
            self.oom(out)
            return
        resp.integer(out, 1 if written else 0)

    def _getset(self, connection, args, out):
        try:
            _, old = self.store.set(args[1], args[2])
        except OutOfMemory:
            self.oom(out)
            return
        resp.bulk_or_nil(out, old)

    def _getdel(self, connection, args, out):
        resp.bulk_or_nil(out, self.store.getdel(args[1]))

    def _del(self, connection, args, out):
        resp.integer(out, self.store.delete(args[1:]))

    _unlink = _del  # values are freed at once either way

    def _exists(self, connection, args, out):
        resp.integer(out, self.store.count_existing(args[1:]))

    def _type(self, connection, args, out):
        out += b"+string\r\n" if self.store.count_existing(args[1:2]) else b"+none\r\n"

    def _dbsize(self, connection, args, out):
        resp.integer(out, len(self.store))

    def _flushdb(self, connection, args, out):
        """FLUSHDB and FLUSHALL: one database, so the same. ASYNC and SYNC are accepted."""
        if len(args) > 2 or (len(args) == 2 and args[1].lower() not in (b"sync", b"async")):
            self.client_error(out, SYNTAX)
            return
        self.store.clear()
        out += resp.OK

    _flushall = _flushdb

    def _increment(self, key, delta, out):
        """INCR, INCRBY, DECR, DECRBY: atomic read, add, write, with Redis's errors."""
        def add(current):
            value = 0
            if current is not None:
                value = parse_int64(current)
                if value is None:
                    raise _Refused(NOT_INTEGER)
            value += delta
            if not resp.MIN_INT64 <= value <= resp.MAX_INT64:
                raise _Refused(OVERFLOW)
            return b"%d" % value

        try:
            resp.integer(out, int(self.store.update(key, add)))
        except _Refused as refused:
            self.client_error(out, refused.args[0])
        except OutOfMemory:
            self.oom(out)

    def _incr(self, connection, args, out):
        self._increment(args[1], 1, out)

    def _decr(self, connection, args, out):
        self._increment(args[1], -1, out)

    def _incrby(self, connection, args, out):
        delta = parse_int64(args[2])
        if delta is None:
            self.client_error(out, NOT_INTEGER)
        else:
            self._increment(args[1], delta, out)

    def _decrby(self, connection, args, out):
        delta = parse_int64(args[2])
        if delta is None:
            self.client_error(out, NOT_INTEGER)
        elif delta == resp.MIN_INT64:
            self.client_error(out, "ERR decrement would overflow")
        else:
            self._increment(args[1], -delta, out)

    def _incrbyfloat(self, connection, args, out):
        increment = long_double.parse(args[2])
        if increment is None:
            self.client_error(out, NOT_FLOAT)
            return

        def add(current):
            value = long_double.parse(current) if current is not None else 0
            if value is None:
                raise _Refused(NOT_FLOAT)
            total = long_double.add(value, increment)
            if total is None:
                raise _Refused("ERR increment would produce NaN or Infinity")
            return long_double.format_human(total)

        try:
            resp.bulk(out, self.store.update(args[1], add))
        except _Refused as refused:
            self.client_error(out, refused.args[0])
        except OutOfMemory:
            self.oom(out)

    def _append(self, connection, args, out):
        limit = self.config.max_bulk_bytes
        suffix = args[2]

        def append(current):
            value = (current or b"") + suffix
            if len(value) > limit:
                raise _Refused("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            return value

        try:
            resp.integer(out, len(self.store.update(args[1], append)))
        except _Refused as refused:
            self.client_error(out, refused.args[0])
        except OutOfMemory:
            self.oom(out)

    def _strlen(self, connection, args, out):
        resp.integer(out, len(self.store.get(args[1]) or b""))

    def _mget(self, connection, args, out):
        values = self.store.mget(args[1:])
        resp.array(out, len(values))
        for value in values:
            resp.bulk_or_nil(out, value)

    def _mset(self, connection, args, out):
        try:
            self.store.mset(list(zip(args[1::2], args[2::2])))
        except OutOfMemory:
            self.oom(out)
            return
        out += resp.OK

    def _msetnx(self, connection, args, out):
        try:
            written = self.store.mset(list(zip(args[1::2], args[2::2])), only_if_all_absent=True)
        except OutOfMemory:
            self.oom(out)
            return
        resp.integer(out, 1 if written else 0)
