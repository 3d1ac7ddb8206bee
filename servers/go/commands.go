// Running one parsed request: Redis 7.0's replies and error texts for every command of
// docs/service.md, as servers/common/commands.cc and key_commands.cc give them, plus the three
// simulated-work commands done the Go way: SY.CPU burns CPU on the goroutine, SY.WAIT parks it on
// a timer (time.Sleep), SY.BLOCK makes a real blocking system call, so its thread (M) blocks and
// the runtime hands the thread's P to another thread.
package main

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const version = "dev"

// maxSimulatedMicros is the longest SY.CPU / SY.WAIT / SY.BLOCK accepted, so a typo cannot park a
// connection for hours.
const maxSimulatedMicros = 60_000_000

const (
	notIntegerError = "ERR value is not an integer or out of range"
	overflowError   = "ERR increment or decrement would overflow"
	notFloatError   = "ERR value is not a valid float"
	oomError        = "OOM command not allowed when used memory > 'store-bytes'."
	syntaxError     = "ERR syntax error"
)

// session is what a connection's commands read or change: the server, the connection's id and
// name (CLIENT ID, SETNAME, GETNAME), and where its replies go.
type session struct {
	srv  *Server
	id   uint64
	name string
	w    Writer
}

// failEcho is the test hook SWITCHYARD_TEST_FAIL_ECHO=<text>: an ECHO of exactly <text> panics, as
// running out of memory mid-request would, so the tests see that one connection's failure closes
// that connection alone.
var failEcho, failEchoSet = os.LookupEnv("SWITCHYARD_TEST_FAIL_ECHO")

// execute runs one request and writes its reply. It returns the command run (nil for an unknown
// one, counted as "unknown") and whether the connection is to be closed after the reply.
func (s *session) execute(args [][]byte) (spec *commandSpec, close bool) {
	m := s.srv.metrics
	if name := args[0]; equalFold(name, "post") || equalFold(name, "host:") {
		// Redis 7's securityWarningCommand(): "POST" and "Host:" mean an HTTP client (or a
		// browser tricked into talking to us, the cross-protocol attack). Close without a reply.
		m.Error(errProtocol)
		return nil, true
	}
	spec = findCommand(args[0])
	if spec == nil {
		m.Error(errUnknownCommand)
		s.w.Error(unknownCommand(args))
		return nil, false
	}
	argc := len(args)
	if (spec.arity > 0 && argc != spec.arity) || (spec.arity < 0 && argc < -spec.arity) ||
		(spec.name == "ping" && argc > 2) ||
		((spec.name == "mset" || spec.name == "msetnx") && argc%2 == 0) {
		m.Error(errWrongArguments)
		s.w.Error("ERR wrong number of arguments for '" + spec.name + "' command")
		return spec, false
	}
	return spec, s.run(spec.name, args)
}

// run executes a command whose arity has been checked; true to close the connection.
func (s *session) run(name string, args [][]byte) bool {
	w, st := s.w, s.srv.store
	switch name {
	case "ping":
		if len(args) == 1 {
			w.Simple("PONG")
		} else {
			w.Bulk(args[1])
		}
	case "echo":
		if failEchoSet && string(args[1]) == failEcho {
			panic(fmt.Sprintf("ECHO %s failed (SWITCHYARD_TEST_FAIL_ECHO)", args[1]))
		}
		w.Bulk(args[1])
	case "quit":
		w.Simple("OK")
		return true
	case "get":
		s.bulkOrNull(st.Get(string(args[1])))
	case "getdel":
		s.bulkOrNull(st.GetDel(string(args[1])))
	case "set":
		s.set(args)
	case "setnx":
		_, _, status := st.Set(string(args[1]), args[2], Absent)
		if !s.refused(status) {
			w.Integer(boolInt(status == OK))
		}
	case "getset":
		old, hadOld, status := st.Set(string(args[1]), args[2], Always)
		if !s.refused(status) {
			s.bulkOrNull(old, hadOld)
		}
	case "del", "unlink": // values are freed at once either way
		w.Integer(int64(st.Delete(strs(args[1:]))))
	case "exists":
		w.Integer(int64(st.CountExisting(strs(args[1:]))))
	case "type":
		if st.CountExisting([]string{string(args[1])}) > 0 {
			w.Simple("string")
		} else {
			w.Simple("none")
		}
	case "dbsize":
		w.Integer(int64(st.Len()))
	case "flushdb", "flushall":
		if len(args) > 2 || (len(args) == 2 && !equalFold(args[1], "sync") &&
			!equalFold(args[1], "async")) {
			s.clientError(syntaxError)
			break
		}
		st.Clear()
		w.Simple("OK")
	case "incr":
		s.incrementBy(args[1], 1)
	case "decr":
		s.incrementBy(args[1], -1)
	case "incrby", "decrby":
		delta, ok := parseRedisInt(args[2])
		switch {
		case !ok:
			s.clientError(notIntegerError)
		case name == "decrby" && delta == math.MinInt64:
			s.clientError("ERR decrement would overflow")
		default:
			if name == "decrby" {
				delta = -delta
			}
			s.incrementBy(args[1], delta)
		}
	case "incrbyfloat":
		s.incrementByFloat(args)
	case "append":
		s.append(args)
	case "strlen":
		v, _ := st.Get(string(args[1]))
		w.Integer(int64(len(v)))
	case "mget":
		values, found := st.MultiGet(strs(args[1:]))
		w.Array(len(values))
		for i := range values {
			s.bulkOrNull(values[i], found[i])
		}
	case "mset", "msetnx":
		var keys []string
		var values [][]byte
		for i := 1; i+1 < len(args); i += 2 {
			keys, values = append(keys, string(args[i])), append(values, args[i+1])
		}
		status := st.MultiSet(keys, values, name == "msetnx")
		switch {
		case s.refused(status):
		case name == "msetnx":
			w.Integer(boolInt(status == OK))
		default:
			w.Simple("OK")
		}
	case "command":
		if !commandCommand(args, w) {
			s.srv.metrics.Error(errWrongArguments)
		}
	case "config":
		if equalFold(args[1], "get") && len(args) >= 3 {
			s.configGet(args)
		} else {
			s.clientError("ERR only CONFIG GET is supported")
		}
	case "client":
		s.client(args)
	case "hello":
		s.hello(args)
	case "select":
		n, ok := parseRedisInt(args[1])
		switch {
		case !ok:
			s.clientError(notIntegerError)
		case n < math.MinInt32 || n > math.MaxInt32:
			s.clientError("ERR value is out of range, value must between -2147483648 and " +
				"2147483647")
		case n != 0:
			s.clientError("ERR DB index is out of range")
		default:
			w.Simple("OK")
		}
	case "info":
		s.info()
	case "sy.cpu", "sy.wait", "sy.block":
		micros, ok := parseRedisInt(args[1])
		if !ok || micros < 0 || micros > maxSimulatedMicros {
			s.srv.metrics.Error(errWrongArguments)
			w.Error("ERR usec must be an integer from 0 to " + strconv.Itoa(maxSimulatedMicros))
			break
		}
		d := time.Duration(micros) * time.Microsecond
		switch name {
		case "sy.cpu":
			burnCPU(d)
		case "sy.wait":
			time.Sleep(d) // the goroutine parks on a timer; its thread runs other goroutines
		case "sy.block":
			blockingSleep(d)
		}
		w.Simple("OK")
	}
	return false
}

func (s *session) clientError(message string) {
	s.srv.metrics.Error(errWrongArguments)
	s.w.Error(message)
}

// refused replies to a write the store could not make (-OOM) and says so.
func (s *session) refused(status Status) bool {
	if status != OOM {
		return false
	}
	s.srv.metrics.Error(errOOM)
	s.w.Error(oomError)
	return true
}

func (s *session) bulkOrNull(v []byte, ok bool) {
	if ok {
		s.w.Bulk(v)
	} else {
		s.w.Null()
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func strs(args [][]byte) []string {
	keys := make([]string, len(args))
	for i, a := range args {
		keys[i] = string(a)
	}
	return keys
}

func equalFold(b []byte, s string) bool { return len(b) == len(s) && strings.EqualFold(string(b), s) }

// unknownCommand is Redis's own wording, so clients and people recognise it.
func unknownCommand(args [][]byte) string {
	var quoted []byte
	for _, a := range args[1:] {
		if len(quoted) >= 128 {
			break
		}
		if room := 128 - len(quoted); len(a) > room {
			a = a[:room]
		}
		quoted = append(append(append(quoted, '\''), a...), "' "...)
	}
	return "ERR unknown command '" + truncate(string(args[0]), 128) +
		"', with args beginning with: " + string(quoted)
}

// set is SET key value [NX|XX] [GET]. The expiry options are refused by name rather than
// ignored: a client that asked for a key to expire must not believe it will.
func (s *session) set(args [][]byte) {
	cond, get, expiry := Always, false, ""
	for i := 3; i < len(args); i++ {
		option := strings.ToUpper(string(args[i]))
		hasNext := i+1 < len(args)
		switch {
		case option == "NX" && cond != Present:
			cond = Absent
		case option == "XX" && cond != Absent:
			cond = Present
		case option == "GET":
			get = true
		case option == "KEEPTTL" && (expiry == "" || strings.EqualFold(expiry, "keepttl")):
			expiry = string(args[i])
		case (option == "EX" || option == "PX" || option == "EXAT" || option == "PXAT") &&
			hasNext && (expiry == "" || strings.EqualFold(expiry, option)):
			expiry = string(args[i])
			i++ // its time
		default:
			s.clientError(syntaxError)
			return
		}
	}
	if expiry != "" {
		s.clientError("ERR SET " + expiry + ": key expiry (EX, PX, EXAT, PXAT, KEEPTTL) is " +
			"not supported; keys stay until deleted")
		return
	}
	old, hadOld, status := s.srv.store.Set(string(args[1]), args[2], cond)
	switch {
	case s.refused(status):
	case get:
		s.bulkOrNull(old, hadOld)
	case status == OK:
		s.w.Simple("OK")
	default:
		s.w.Null()
	}
}

// incrementBy is INCR, INCRBY, DECR and DECRBY: read, add, write under the key's lock.
func (s *session) incrementBy(key []byte, delta int64) {
	var result int64
	var failure string
	status := s.srv.store.Update(string(key), func(current []byte, exists bool) ([]byte, bool) {
		value := int64(0)
		if exists {
			v, ok := parseRedisInt(current)
			if !ok {
				failure = notIntegerError
				return nil, false
			}
			value = v
		}
		if (delta < 0 && value < math.MinInt64-delta) || (delta > 0 && value > math.MaxInt64-delta) {
			failure = overflowError
			return nil, false
		}
		result = value + delta
		return strconv.AppendInt(nil, result, 10), true
	})
	switch {
	case s.refused(status):
	case failure != "":
		s.clientError(failure)
	default:
		s.w.Integer(result)
	}
}

func (s *session) incrementByFloat(args [][]byte) {
	increment, ok := parseLongDouble(args[2])
	if !ok {
		s.clientError(notFloatError)
		return
	}
	var result []byte
	var failure string
	status := s.srv.store.Update(string(args[1]), func(current []byte, exists bool) ([]byte, bool) {
		value := new(big.Float).SetPrec(longDoublePrec)
		if exists {
			parsed, ok := parseLongDouble(current)
			if !ok {
				failure = notFloatError
				return nil, false
			}
			value = parsed
		}
		sum, finite := addLongDouble(value, increment)
		if !finite {
			failure = "ERR increment would produce NaN or Infinity"
			return nil, false
		}
		result = []byte(formatLongDouble(sum))
		return result, true
	})
	switch {
	case s.refused(status):
	case failure != "":
		s.clientError(failure)
	default:
		s.w.Bulk(result)
	}
}

func (s *session) append(args [][]byte) {
	limit := s.srv.cfg.MaxBulkBytes
	var length int64
	tooLong := false
	status := s.srv.store.Update(string(args[1]), func(current []byte, _ bool) ([]byte, bool) {
		length = int64(len(current) + len(args[2]))
		if length > limit {
			tooLong = true
			return nil, false
		}
		// A new slice: stored values are never modified in place.
		return append(append(make([]byte, 0, length), current...), args[2]...), true
	})
	switch {
	case s.refused(status):
	case tooLong:
		s.clientError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	default:
		s.w.Integer(length)
	}
}

// configGet answers the handful of parameters clients ask for at start (redis-benchmark reads
// "save" and "appendonly"); anything else matches nothing, as an unknown glob does in Redis.
func (s *session) configGet(args [][]byte) {
	cfg := s.srv.cfg
	params := [][2]string{
		{"save", ""},
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(cfg.MaxClients)},
		{"maxmemory", strconv.FormatInt(cfg.StoreBytes, 10)},
		{"proto-max-bulk-len", strconv.FormatInt(cfg.MaxBulkBytes, 10)},
		{"client-query-buffer-limit", strconv.FormatInt(cfg.QueryBufferBytes, 10)},
	}
	var found []int
	seen := make([]bool, len(params))
	for _, pattern := range args[2:] {
		for i, p := range params {
			if !seen[i] && (string(pattern) == "*" || equalFold(pattern, p[0])) {
				seen[i] = true
				found = append(found, i)
			}
		}
	}
	s.w.Array(2 * len(found))
	for _, i := range found {
		s.w.BulkString(params[i][0])
		s.w.BulkString(params[i][1])
	}
}

// setName is Redis's clientSetName(): printable ASCII without spaces; an empty name clears it.
func (s *session) setName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' {
			s.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return false
		}
	}
	s.name = string(name)
	return true
}

// client answers CLIENT ID, GETNAME, SETNAME (kept for the connection's life) and SETINFO
// (accepted and forgotten).
func (s *session) client(args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	arity := func(expected int) bool {
		if len(args) == expected {
			return true
		}
		s.w.Error("ERR wrong number of arguments for 'client|" + sub + "' command")
		return false
	}
	switch sub {
	case "setname":
		if arity(3) && s.setName(args[2]) {
			s.w.Simple("OK")
		}
	case "setinfo":
		if arity(4) {
			s.w.Simple("OK")
		}
	case "getname":
		if arity(2) {
			s.bulkOrNull([]byte(s.name), s.name != "")
		}
	case "id":
		if arity(2) {
			s.w.Integer(int64(s.id))
		}
	default:
		s.w.Error("ERR unknown subcommand '" + truncate(string(args[1]), 128) +
			"'. Try CLIENT HELP.")
	}
}

// hello is HELLO [protover [AUTH username password] [SETNAME clientname]]: RESP2 only; AUTH is
// accepted as Redis's passwordless default user accepts it.
func (s *session) hello(args [][]byte) {
	if len(args) > 1 {
		v, ok := parseRedisInt(args[1])
		if !ok {
			s.w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 {
			s.w.Error("NOPROTO unsupported protocol version")
			return
		}
	}
	var name []byte
	for i := 2; i < len(args); i++ {
		more := len(args) - 1 - i
		switch {
		case equalFold(args[i], "auth") && more >= 2:
			i += 2
		case equalFold(args[i], "setname") && more >= 1:
			i++
			name = args[i]
		default:
			s.w.Error("ERR Syntax error in HELLO option '" + truncate(string(args[i]), 128) + "'")
			return
		}
	}
	if name != nil && !s.setName(name) {
		return
	}
	// RESP2 has no map type: HELLO's map is a flat array of field, value pairs, as in Redis.
	w := s.w
	w.Array(14)
	w.BulkString("server")
	w.BulkString("switchyard")
	w.BulkString("version")
	w.BulkString(version)
	w.BulkString("proto")
	w.Integer(2)
	w.BulkString("id")
	w.Integer(int64(s.id))
	w.BulkString("mode")
	w.BulkString("standalone")
	w.BulkString("role")
	w.BulkString("master")
	w.BulkString("modules")
	w.Array(0)
}

func (s *session) info() {
	text := "# Server\r\nredis_version:7.0.0\r\nswitchyard_version:" + version +
		"\r\nswitchyard_model:" + s.srv.cfg.Model +
		"\r\ngo_version:" + runtime.Version() +
		"\r\nprocess_id:" + strconv.Itoa(os.Getpid()) +
		"\r\n\r\n# Stats\r\nstore_lock_repairs:0\r\nstore_allocator_damaged:0" +
		"\r\n\r\n# Keyspace\r\n"
	// As Redis, a database is listed only when it holds keys.
	if keys := s.srv.store.Len(); keys > 0 {
		text += "db0:keys=" + strconv.Itoa(keys) + ",expires=0,avg_ttl=0\r\n"
	}
	s.w.BulkString(text)
}
