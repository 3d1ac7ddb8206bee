// What each command is: its name, arity and key positions for dispatch, and the description
// clients read back with COMMAND, COMMAND INFO and COMMAND DOCS (redis-cli builds its hints from
// DOCS; cluster clients find keys from INFO). The same table as servers/common/command_table.cc,
// in the same order, so the peer answers COMMAND exactly as the C++ models do.
package main

import "strings"

// argDoc is one argument as COMMAND DOCS describes it (Redis 7's argument model).
type argDoc struct {
	name, typ, token   string // typ: key, string, integer, double, pure-token, oneof, block
	optional, multiple bool
	args               []argDoc
}

type commandSpec struct {
	id                          int    // its position in commandTable
	name                        string // lower case, as Redis prints it in errors
	arity                       int    // N: exactly N arguments; -N: at least N
	flags                       []string
	firstKey, lastKey, keyStep  int
	group, summary, since, cplx string
	args                        []argDoc
}

func key() argDoc                   { return argDoc{name: "key", typ: "key"} }
func str(name string) argDoc        { return argDoc{name: name, typ: "string"} }
func integer(name string) argDoc    { return argDoc{name: name, typ: "integer"} }
func token(name, tok string) argDoc { return argDoc{name: name, typ: "pure-token", token: tok} }
func optional(a argDoc) argDoc      { a.optional = true; return a }
func multiple(a argDoc) argDoc      { a.multiple = true; return a }
func oneOf(name string, choices ...argDoc) argDoc {
	return argDoc{name: name, typ: "oneof", args: choices}
}
func block(name string, parts ...argDoc) argDoc {
	return argDoc{name: name, typ: "block", args: parts}
}
func withToken(tok string, a argDoc) argDoc { a.token = tok; return a }
func flushMode() argDoc {
	return optional(oneOf("flush-type", token("async", "ASYNC"), token("sync", "SYNC")))
}

// The summaries, versions and complexities are Redis 7.0's own, for the commands it has.
var commandTable = []commandSpec{
	{0, "ping", -1, []string{"fast"}, 0, 0, 0, "connection", "Ping the server", "1.0.0", "O(1)",
		[]argDoc{optional(str("message"))}},
	{0, "echo", 2, []string{"fast"}, 0, 0, 0, "connection", "Echo the given string", "1.0.0", "O(1)",
		[]argDoc{str("message")}},
	{0, "get", 2, []string{"readonly", "fast"}, 1, 1, 1, "string", "Get the value of a key", "1.0.0",
		"O(1)", []argDoc{key()}},
	{0, "set", -3, []string{"write", "denyoom"}, 1, 1, 1, "string", "Set the string value of a key",
		"1.0.0", "O(1)", []argDoc{key(), str("value"),
			optional(oneOf("condition", token("nx", "NX"), token("xx", "XX"))),
			optional(token("get", "GET"))}},
	{0, "del", -2, []string{"write"}, 1, -1, 1, "generic", "Delete a key", "1.0.0",
		"O(N) where N is the number of keys that will be removed.", []argDoc{multiple(key())}},
	{0, "incr", 2, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Increment the integer value of a key by one", "1.0.0", "O(1)", []argDoc{key()}},
	{0, "quit", -1, []string{"loading", "stale", "fast", "no_auth", "allow_busy"}, 0, 0, 0,
		"connection", "Close the connection", "1.0.0", "O(1)", nil},
	{0, "command", -1, []string{"loading", "stale"}, 0, 0, 0, "server",
		"Get array of Redis command details", "2.8.13",
		"O(N) where N is the total number of commands", nil},
	{0, "config", -2, []string{}, 0, 0, 0, "server",
		"A container for server configuration commands (only CONFIG GET here)", "2.0.0",
		"Depends on subcommand.", []argDoc{token("get", "GET"), multiple(str("parameter"))}},
	{0, "client", -2, []string{}, 0, 0, 0, "connection",
		"A container for client connection commands (ID, GETNAME, SETNAME, SETINFO here)",
		"2.4.0", "Depends on subcommand.",
		[]argDoc{str("subcommand"), optional(multiple(str("arg")))}},
	{0, "hello", -1, []string{"noscript", "loading", "stale", "fast", "no_auth"}, 0, 0, 0,
		"connection", "Handshake with Redis (RESP2 only)", "6.0.0", "O(1)",
		[]argDoc{optional(block("arguments", integer("protover"),
			optional(withToken("AUTH", block("username-password", str("username"),
				str("password")))),
			optional(withToken("SETNAME", str("clientname")))))}},
	{0, "select", 2, []string{"loading", "stale", "fast"}, 0, 0, 0, "connection",
		"Change the selected database for the current connection (only 0 exists)", "1.0.0",
		"O(1)", []argDoc{integer("index")}},
	{0, "info", -1, []string{"loading", "stale"}, 0, 0, 0, "server",
		"Get information and statistics about the server", "1.0.0", "O(1)",
		[]argDoc{optional(multiple(str("section")))}},
	{0, "sy.cpu", 2, []string{}, 0, 0, 0, "switchyard",
		"Burn usec microseconds of CPU on whatever serves the request, then reply OK", "0.1.0",
		"O(usec)", []argDoc{integer("usec")}},
	{0, "sy.wait", 2, []string{}, 0, 0, 0, "switchyard",
		"Wait usec microseconds the model's own way (a downstream call), then reply OK", "0.1.0",
		"O(1)", []argDoc{integer("usec")}},
	{0, "sy.block", 2, []string{}, 0, 0, 0, "switchyard",
		"Block whatever serves the request in a real sleep of usec microseconds, then reply OK",
		"0.1.0", "O(1)", []argDoc{integer("usec")}},
	{0, "incrby", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Increment the integer value of a key by the given amount", "1.0.0", "O(1)",
		[]argDoc{key(), integer("increment")}},
	{0, "decr", 2, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Decrement the integer value of a key by one", "1.0.0", "O(1)", []argDoc{key()}},
	{0, "decrby", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Decrement the integer value of a key by the given number", "1.0.0", "O(1)",
		[]argDoc{key(), integer("decrement")}},
	{0, "incrbyfloat", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Increment the float value of a key by the given amount", "2.6.0", "O(1)",
		[]argDoc{key(), {name: "increment", typ: "double"}}},
	{0, "append", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Append a value to a key", "2.0.0",
		"O(1). The amortized time complexity is O(1) assuming the appended value is small and " +
			"the already present value is of any size, since the dynamic string library used " +
			"by Redis will double the free space available on every reallocation.",
		[]argDoc{key(), str("value")}},
	{0, "strlen", 2, []string{"readonly", "fast"}, 1, 1, 1, "string",
		"Get the length of the value stored in a key", "2.2.0", "O(1)", []argDoc{key()}},
	{0, "setnx", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Set the value of a key, only if the key does not exist", "1.0.0", "O(1)",
		[]argDoc{key(), str("value")}},
	{0, "getset", 3, []string{"write", "denyoom", "fast"}, 1, 1, 1, "string",
		"Set the string value of a key and return its old value", "1.0.0", "O(1)",
		[]argDoc{key(), str("value")}},
	{0, "getdel", 2, []string{"write", "fast"}, 1, 1, 1, "string",
		"Get the value of a key and delete the key", "6.2.0", "O(1)", []argDoc{key()}},
	{0, "mget", -2, []string{"readonly", "fast"}, 1, -1, 1, "string",
		"Get the values of all the given keys", "1.0.0",
		"O(N) where N is the number of keys to retrieve.", []argDoc{multiple(key())}},
	{0, "mset", -3, []string{"write", "denyoom"}, 1, -1, 2, "string",
		"Set multiple keys to multiple values", "1.0.1",
		"O(N) where N is the number of keys to set.",
		[]argDoc{multiple(block("data", key(), str("value")))}},
	{0, "msetnx", -3, []string{"write", "denyoom"}, 1, -1, 2, "string",
		"Set multiple keys to multiple values, only if none of the keys exist", "1.0.1",
		"O(N) where N is the number of keys to set.",
		[]argDoc{multiple(block("data", key(), str("value")))}},
	{0, "exists", -2, []string{"readonly", "fast"}, 1, -1, 1, "generic",
		"Determine if a key exists", "1.0.0", "O(N) where N is the number of keys to check.",
		[]argDoc{multiple(key())}},
	{0, "unlink", -2, []string{"write", "fast"}, 1, -1, 1, "generic",
		"Delete a key (here as DEL: values are freed at once)", "4.0.0",
		"O(1) for each key removed regardless of its size.", []argDoc{multiple(key())}},
	{0, "type", 2, []string{"readonly", "fast"}, 1, 1, 1, "generic",
		"Determine the type stored at key (always string here)", "1.0.0", "O(1)",
		[]argDoc{key()}},
	{0, "dbsize", 1, []string{"readonly", "fast"}, 0, 0, 0, "server",
		"Return the number of keys in the selected database", "1.0.0", "O(1)", nil},
	{0, "flushdb", -1, []string{"write"}, 0, 0, 0, "server",
		"Remove all keys from the current database", "1.0.0",
		"O(N) where N is the number of keys in the selected database", []argDoc{flushMode()}},
	{0, "flushall", -1, []string{"write"}, 0, 0, 0, "server", "Remove all keys from all databases",
		"1.0.0", "O(N) where N is the total number of keys in all databases",
		[]argDoc{flushMode()}},
}

var commandsByName = func() map[string]*commandSpec {
	m := make(map[string]*commandSpec, len(commandTable))
	for i := range commandTable {
		commandTable[i].id = i
		m[commandTable[i].name] = &commandTable[i]
	}
	return m
}()

// findCommand returns the command named name (any case), or nil.
func findCommand(name []byte) *commandSpec {
	var lower [16]byte
	if len(name) > len(lower) {
		return nil
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return commandsByName[string(lower[:len(name)])] // no allocation for a map lookup
}

func (spec *commandSpec) has(flag string) bool {
	for _, f := range spec.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// categories are Redis's ACL categories, derived: enough for clients that sort commands by them.
func (spec *commandSpec) categories() []string {
	var c []string
	if spec.has("write") {
		c = append(c, "@write")
	}
	if spec.has("readonly") {
		c = append(c, "@read")
	}
	switch spec.group {
	case "string":
		c = append(c, "@string")
	case "generic":
		c = append(c, "@keyspace")
	case "connection":
		c = append(c, "@connection")
	}
	if spec.has("fast") {
		return append(c, "@fast")
	}
	return append(c, "@slow")
}

// writeInfo writes COMMAND INFO's ten-element entry (Redis 7): name, arity, flags, first key,
// last key, step, ACL categories, tips, key specifications, subcommands.
func (spec *commandSpec) writeInfo(w Writer) {
	w.Array(10)
	w.BulkString(spec.name)
	w.Integer(int64(spec.arity))
	w.Array(len(spec.flags))
	for _, f := range spec.flags {
		w.Simple(f)
	}
	w.Integer(int64(spec.firstKey))
	w.Integer(int64(spec.lastKey))
	w.Integer(int64(spec.keyStep))
	categories := spec.categories()
	w.Array(len(categories))
	for _, c := range categories {
		w.Simple(c)
	}
	w.Array(0)
	w.Array(0)
	w.Array(0)
}

// writeArgument writes one argument's map, flattened to field, value pairs as RESP2 does.
func writeArgument(a argDoc, w Writer) {
	fields := 2
	if a.token != "" {
		fields++
	}
	if a.optional || a.multiple {
		fields++
	}
	if len(a.args) > 0 {
		fields++
	}
	w.Array(2 * fields)
	w.BulkString("name")
	w.BulkString(a.name)
	w.BulkString("type")
	w.BulkString(a.typ)
	if a.token != "" {
		w.BulkString("token")
		w.BulkString(a.token)
	}
	if a.optional || a.multiple {
		w.BulkString("flags")
		n := 0
		if a.optional {
			n++
		}
		if a.multiple {
			n++
		}
		w.Array(n)
		if a.optional {
			w.Simple("optional")
		}
		if a.multiple {
			w.Simple("multiple")
		}
	}
	if len(a.args) > 0 {
		w.BulkString("arguments")
		w.Array(len(a.args))
		for _, child := range a.args {
			writeArgument(child, w)
		}
	}
}

func (spec *commandSpec) writeDocs(w Writer) {
	fields := 4
	if len(spec.args) > 0 {
		fields++
	}
	w.Array(2 * fields)
	w.BulkString("summary")
	w.BulkString(spec.summary)
	w.BulkString("since")
	w.BulkString(spec.since)
	w.BulkString("group")
	w.BulkString(spec.group)
	w.BulkString("complexity")
	w.BulkString(spec.cplx)
	if len(spec.args) > 0 {
		w.BulkString("arguments")
		w.Array(len(spec.args))
		for _, a := range spec.args {
			writeArgument(a, w)
		}
	}
}

var commandHelp = []string{
	"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"(no subcommand)",
	"    Return details about all commands.",
	"COUNT",
	"    Return the total number of commands in this server.",
	"LIST",
	"    Return a list of all commands in this server.",
	"INFO [<command-name> ...]",
	"    Return details about multiple commands.",
	"    By default all commands are shown.",
	"DOCS [<command-name> ...]",
	"    Return documentation details about multiple commands.",
	"    By default all commands are shown.",
	"HELP",
	"    Print this help.",
}

// commandCommand answers COMMAND and its subcommands (COUNT, LIST, INFO, DOCS, HELP). It returns
// false, having written an error, when the arguments were wrong.
func commandCommand(args [][]byte, w Writer) bool {
	if len(args) == 1 {
		w.Array(len(commandTable))
		for i := range commandTable {
			commandTable[i].writeInfo(w)
		}
		return true
	}
	sub := strings.ToLower(string(args[1]))
	wrongArity := func() bool {
		w.Error("ERR wrong number of arguments for 'command|" + sub + "' command")
		return false
	}
	switch sub {
	case "count":
		if len(args) != 2 {
			return wrongArity()
		}
		w.Integer(int64(len(commandTable)))
	case "list":
		if len(args) != 2 { // FILTERBY is not served
			w.Error("ERR syntax error")
			return false
		}
		w.Array(len(commandTable))
		for i := range commandTable {
			w.BulkString(commandTable[i].name)
		}
	case "info":
		if len(args) == 2 {
			w.Array(len(commandTable))
			for i := range commandTable {
				commandTable[i].writeInfo(w)
			}
			break
		}
		w.Array(len(args) - 2)
		for _, name := range args[2:] {
			if spec := findCommand(name); spec != nil {
				spec.writeInfo(w)
			} else {
				w.Null()
			}
		}
	case "docs":
		var found []*commandSpec
		if len(args) == 2 {
			for i := range commandTable {
				found = append(found, &commandTable[i])
			}
		}
		for _, name := range args[2:] {
			if spec := findCommand(name); spec != nil {
				found = append(found, spec)
			}
		}
		w.Array(2 * len(found))
		for _, spec := range found {
			w.BulkString(spec.name)
			spec.writeDocs(w)
		}
	case "help":
		if len(args) != 2 {
			return wrongArity()
		}
		w.Array(len(commandHelp))
		for _, line := range commandHelp {
			w.Simple(line)
		}
	default:
		w.Error("ERR unknown subcommand '" + truncate(string(args[1]), 128) +
			"'. Try COMMAND HELP.")
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
