"""What each command is: name, arity and keys for dispatch, and the description clients read back
with COMMAND, COMMAND INFO and COMMAND DOCS (redis-cli builds its hints from DOCS). The same
table as servers/common/command_table.cc, in the same order: a command's position is its index
in the C++ models' metrics, and the replies to COMMAND are the same bytes.
"""
from collections import namedtuple

import resp

Spec = namedtuple("Spec", "name arity flags first_key last_key key_step group summary since "
                          "complexity arguments")


# Argument docs (Redis 7's argument model) as dicts, built by these shorthands.
def arg(name, kind, token=b"", optional=False, multiple=False, arguments=()):
    return dict(name=name, type=kind, token=token, optional=optional, multiple=multiple,
                arguments=list(arguments))


def key(name=b"key"):
    return arg(name, b"key")


def string(name):
    return arg(name, b"string")


def integer(name):
    return arg(name, b"integer")


def token(name, text):
    return arg(name, b"pure-token", text)


def optional(doc):
    return dict(doc, optional=True)


def multiple(doc):
    return dict(doc, multiple=True)


def one_of(name, choices):
    return arg(name, b"oneof", arguments=choices)


def block(name, parts):
    return arg(name, b"block", arguments=parts)


def with_token(text, doc):
    return dict(doc, token=text)


def flush_mode():
    return optional(one_of(b"flush-type", [token(b"async", b"ASYNC"), token(b"sync", b"SYNC")]))


# The summaries, versions and complexities are Redis 7.0's own, for the commands it has.
TABLE = [
    Spec(b"ping", -1, [b"fast"], 0, 0, 0, b"connection", b"Ping the server", b"1.0.0", b"O(1)",
         [optional(string(b"message"))]),
    Spec(b"echo", 2, [b"fast"], 0, 0, 0, b"connection", b"Echo the given string", b"1.0.0",
         b"O(1)", [string(b"message")]),
    Spec(b"get", 2, [b"readonly", b"fast"], 1, 1, 1, b"string", b"Get the value of a key",
         b"1.0.0", b"O(1)", [key()]),
    Spec(b"set", -3, [b"write", b"denyoom"], 1, 1, 1, b"string",
         b"Set the string value of a key", b"1.0.0", b"O(1)",
         [key(), string(b"value"),
          optional(one_of(b"condition", [token(b"nx", b"NX"), token(b"xx", b"XX")])),
          optional(token(b"get", b"GET"))]),
    Spec(b"del", -2, [b"write"], 1, -1, 1, b"generic", b"Delete a key", b"1.0.0",
         b"O(N) where N is the number of keys that will be removed.", [multiple(key())]),
    Spec(b"incr", 2, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Increment the integer value of a key by one", b"1.0.0", b"O(1)", [key()]),
    Spec(b"quit", -1, [b"loading", b"stale", b"fast", b"no_auth", b"allow_busy"], 0, 0, 0,
         b"connection", b"Close the connection", b"1.0.0", b"O(1)", []),
    Spec(b"command", -1, [b"loading", b"stale"], 0, 0, 0, b"server",
         b"Get array of Redis command details", b"2.8.13",
         b"O(N) where N is the total number of commands", []),
    Spec(b"config", -2, [], 0, 0, 0, b"server",
         b"A container for server configuration commands (only CONFIG GET here)", b"2.0.0",
         b"Depends on subcommand.", [token(b"get", b"GET"), multiple(string(b"parameter"))]),
    Spec(b"client", -2, [], 0, 0, 0, b"connection",
         b"A container for client connection commands (ID, GETNAME, SETNAME, SETINFO here)",
         b"2.4.0", b"Depends on subcommand.",
         [string(b"subcommand"), optional(multiple(string(b"arg")))]),
    Spec(b"hello", -1, [b"noscript", b"loading", b"stale", b"fast", b"no_auth"], 0, 0, 0,
         b"connection", b"Handshake with Redis (RESP2 only)", b"6.0.0", b"O(1)",
         [optional(block(b"arguments", [
             integer(b"protover"),
             optional(with_token(b"AUTH", block(b"username-password",
                                                [string(b"username"), string(b"password")]))),
             optional(with_token(b"SETNAME", string(b"clientname")))]))]),
    Spec(b"select", 2, [b"loading", b"stale", b"fast"], 0, 0, 0, b"connection",
         b"Change the selected database for the current connection (only 0 exists)", b"1.0.0",
         b"O(1)", [integer(b"index")]),
    Spec(b"info", -1, [b"loading", b"stale"], 0, 0, 0, b"server",
         b"Get information and statistics about the server", b"1.0.0", b"O(1)",
         [optional(multiple(string(b"section")))]),
    Spec(b"sy.cpu", 2, [], 0, 0, 0, b"switchyard",
         b"Burn usec microseconds of CPU on whatever serves the request, then reply OK",
         b"0.1.0", b"O(usec)", [integer(b"usec")]),
    Spec(b"sy.wait", 2, [], 0, 0, 0, b"switchyard",
         b"Wait usec microseconds the model's own way (a downstream call), then reply OK",
         b"0.1.0", b"O(1)", [integer(b"usec")]),
    Spec(b"sy.block", 2, [], 0, 0, 0, b"switchyard",
         b"Block whatever serves the request in a real sleep of usec microseconds, then reply OK",
         b"0.1.0", b"O(1)", [integer(b"usec")]),
    Spec(b"incrby", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Increment the integer value of a key by the given amount", b"1.0.0", b"O(1)",
         [key(), integer(b"increment")]),
    Spec(b"decr", 2, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Decrement the integer value of a key by one", b"1.0.0", b"O(1)", [key()]),
    Spec(b"decrby", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Decrement the integer value of a key by the given number", b"1.0.0", b"O(1)",
         [key(), integer(b"decrement")]),
    Spec(b"incrbyfloat", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Increment the float value of a key by the given amount", b"2.6.0", b"O(1)",
         [key(), arg(b"increment", b"double")]),
    Spec(b"append", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Append a value to a key", b"2.0.0",
         b"O(1). The amortized time complexity is O(1) assuming the appended value is small and "
         b"the already present value is of any size, since the dynamic string library used by "
         b"Redis will double the free space available on every reallocation.",
         [key(), string(b"value")]),
    Spec(b"strlen", 2, [b"readonly", b"fast"], 1, 1, 1, b"string",
         b"Get the length of the value stored in a key", b"2.2.0", b"O(1)", [key()]),
    Spec(b"setnx", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Set the value of a key, only if the key does not exist", b"1.0.0", b"O(1)",
         [key(), string(b"value")]),
    Spec(b"getset", 3, [b"write", b"denyoom", b"fast"], 1, 1, 1, b"string",
         b"Set the string value of a key and return its old value", b"1.0.0", b"O(1)",
         [key(), string(b"value")]),
    Spec(b"getdel", 2, [b"write", b"fast"], 1, 1, 1, b"string",
         b"Get the value of a key and delete the key", b"6.2.0", b"O(1)", [key()]),
    Spec(b"mget", -2, [b"readonly", b"fast"], 1, -1, 1, b"string",
         b"Get the values of all the given keys", b"1.0.0",
         b"O(N) where N is the number of keys to retrieve.", [multiple(key())]),
    Spec(b"mset", -3, [b"write", b"denyoom"], 1, -1, 2, b"string",
         b"Set multiple keys to multiple values", b"1.0.1",
         b"O(N) where N is the number of keys to set.",
         [multiple(block(b"data", [key(), string(b"value")]))]),
    Spec(b"msetnx", -3, [b"write", b"denyoom"], 1, -1, 2, b"string",
         b"Set multiple keys to multiple values, only if none of the keys exist", b"1.0.1",
         b"O(N) where N is the number of keys to set.",
         [multiple(block(b"data", [key(), string(b"value")]))]),
    Spec(b"exists", -2, [b"readonly", b"fast"], 1, -1, 1, b"generic",
         b"Determine if a key exists", b"1.0.0", b"O(N) where N is the number of keys to check.",
         [multiple(key())]),
    Spec(b"unlink", -2, [b"write", b"fast"], 1, -1, 1, b"generic",
         b"Delete a key (here as DEL: values are freed at once)", b"4.0.0",
         b"O(1) for each key removed regardless of its size.", [multiple(key())]),
    Spec(b"type", 2, [b"readonly", b"fast"], 1, 1, 1, b"generic",
         b"Determine the type stored at key (always string here)", b"1.0.0", b"O(1)", [key()]),
    Spec(b"dbsize", 1, [b"readonly", b"fast"], 0, 0, 0, b"server",
         b"Return the number of keys in the selected database", b"1.0.0", b"O(1)", []),
    Spec(b"flushdb", -1, [b"write"], 0, 0, 0, b"server",
         b"Remove all keys from the current database", b"1.0.0",
         b"O(N) where N is the number of keys in the selected database", [flush_mode()]),
    Spec(b"flushall", -1, [b"write"], 0, 0, 0, b"server", b"Remove all keys from all databases",
         b"1.0.0", b"O(N) where N is the total number of keys in all databases", [flush_mode()]),
]

# Metric labels: each command's name at its index, then "unknown".
LABELS = [spec.name.decode() for spec in TABLE] + ["unknown"]
INDEX = {spec.name: i for i, spec in enumerate(TABLE)}
UNKNOWN = len(TABLE)


def _categories(spec):
    """Redis's ACL categories, derived: enough for clients that read them to sort commands."""
    categories = []
    if b"write" in spec.flags:
        categories.append(b"@write")
    if b"readonly" in spec.flags:
        categories.append(b"@read")
    if spec.group == b"string":
        categories.append(b"@string")
    if spec.group == b"generic":
        categories.append(b"@keyspace")
    if spec.group == b"connection":
        categories.append(b"@connection")
    categories.append(b"@fast" if b"fast" in spec.flags else b"@slow")
    return categories


def _info(spec, out):
    """COMMAND INFO's ten-element entry (Redis 7)."""
    resp.array(out, 10)
    resp.bulk(out, spec.name)
    resp.integer(out, spec.arity)
    resp.array(out, len(spec.flags))
    for flag in spec.flags:
        resp.simple(out, flag)
    resp.integer(out, spec.first_key)
    resp.integer(out, spec.last_key)
    resp.integer(out, spec.key_step)
    categories = _categories(spec)
    resp.array(out, len(categories))
    for category in categories:
        resp.simple(out, category)
    out += b"*0\r\n*0\r\n*0\r\n"


def _argument(doc, out):
    """One argument's map, flattened to field, value pairs as RESP2 does with Redis's maps."""
    has_flags = doc["optional"] or doc["multiple"]
    resp.array(out, 2 * (2 + bool(doc["token"]) + has_flags + bool(doc["arguments"])))
    for field in (b"name", b"type"):
        resp.bulk(out, field)
        resp.bulk(out, doc[field.decode()])
    if doc["token"]:
        resp.bulk(out, b"token")
        resp.bulk(out, doc["token"])
    if has_flags:
        resp.bulk(out, b"flags")
        resp.array(out, doc["optional"] + doc["multiple"])
        if doc["optional"]:
            resp.simple(out, b"optional")
        if doc["multiple"]:
            resp.simple(out, b"multiple")
    if doc["arguments"]:
        resp.bulk(out, b"arguments")
        resp.array(out, len(doc["arguments"]))
        for child in doc["arguments"]:
            _argument(child, out)


def _docs(spec, out):
    resp.array(out, 2 * (4 + bool(spec.arguments)))
    for field in (b"summary", b"since", b"group", b"complexity"):
        resp.bulk(out, field)
        resp.bulk(out, getattr(spec, field.decode()))
    if spec.arguments:
        resp.bulk(out, b"arguments")
        resp.array(out, len(spec.arguments))
        for doc in spec.arguments:
            _argument(doc, out)


_HELP = [
    b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"(no subcommand)",
    b"    Return details about all commands.",
    b"COUNT",
    b"    Return the total number of commands in this server.",
    b"LIST",
    b"    Return a list of all commands in this server.",
    b"INFO [<command-name> ...]",
    b"    Return details about multiple commands.",
    b"    By default all commands are shown.",
    b"DOCS [<command-name> ...]",
    b"    Return documentation details about multiple commands.",
    b"    By default all commands are shown.",
    b"HELP",
    b"    Print this help.",
]


def find(name):
    """The spec of command `name` (any case), or None."""
    index = INDEX.get(name.lower())
    return None if index is None else TABLE[index]


def command_command(args, out):
    """COMMAND and its subcommands. False, having replied an error, when the arguments were
    wrong (counted by the caller)."""
    if len(args) == 1:
        resp.array(out, len(TABLE))
        for spec in TABLE:
            _info(spec, out)
        return True
    sub = args[1].lower()

    def wrong_arity(name):
        resp.error(out, b"ERR wrong number of arguments for 'command|%s' command" % name)
        return False

    if sub == b"count":
        if len(args) != 2:
            return wrong_arity(b"count")
        resp.integer(out, len(TABLE))
    elif sub == b"list":
        if len(args) != 2:  # FILTERBY is not served
            resp.error(out, "ERR syntax error")
            return False
        resp.array(out, len(TABLE))
        for spec in TABLE:
            resp.bulk(out, spec.name)
    elif sub == b"info":
        specs = TABLE if len(args) == 2 else [find(name) for name in args[2:]]
        resp.array(out, len(specs))
        for spec in specs:
            if spec is None:
                out += resp.NIL
            else:
                _info(spec, out)
    elif sub == b"docs":
        specs = TABLE if len(args) == 2 else [find(name) for name in args[2:]]
        specs = [spec for spec in specs if spec is not None]
        resp.array(out, 2 * len(specs))
        for spec in specs:
            resp.bulk(out, spec.name)
            _docs(spec, out)
    elif sub == b"help":
        if len(args) != 2:
            return wrong_arity(b"help")
        resp.array(out, len(_HELP))
        for line in _HELP:
            resp.simple(out, line)
    else:
        resp.error(out, b"ERR unknown subcommand '%s'. Try COMMAND HELP." % args[1][:128])
        return False
    return True
