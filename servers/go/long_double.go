// INCRBYFLOAT's arithmetic as Redis does it: C's long double (x86's 80-bit extended precision),
// parsed with string2ld's rules and printed in its human format, so replies match Redis's digits.

package main

import (
	"math/big"
	"strings"
)

// longDoublePrec is the significand of x86's long double (80-bit extended), in which Redis does
// INCRBYFLOAT: big.Float at this precision adds and rounds as it does, with a wider exponent.
const longDoublePrec = 64

// The long double's exponent range, as big.Float's MantExp counts it (0.5 <= mantissa < 1).
const (
	longDoubleMaxExp = 16384  // 2^16384 overflows
	longDoubleMinExp = -16444 // below the smallest subnormal, 2^-16445, strtold underflows to 0
)

// parseLongDouble is Redis's string2ld(): strtold over the whole argument (no leading space, no
// NaN, no overflow, no underflow to zero), decimal or hexadecimal ("0x10"), or "inf".
func parseLongDouble(b []byte) (*big.Float, bool) {
	s := string(b)
	if s == "" || isSpace(s[0]) {
		return nil, false
	}
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	if lower := strings.ToLower(body); lower == "inf" || lower == "infinity" {
		return new(big.Float).SetInf(s[0] == '-'), true
	}
	base := 10
	digits, exponent := isDigit, byte('e')
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		base, digits, exponent = 0, isHexDigit, 'p'
		body = body[2:]
	}
	if !floatSyntax(body, digits, exponent) {
		return nil, false
	}
	f, _, err := new(big.Float).SetPrec(longDoublePrec).Parse(s, base)
	if err != nil {
		return nil, false
	}
	if exp := f.MantExp(nil); f.Sign() != 0 && (exp > longDoubleMaxExp || exp < longDoubleMinExp) {
		return nil, false // strtold's ERANGE: an overflow, or an underflow to zero
	}
	return f, true
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isHexDigit(c byte) bool { return hexValue(c) >= 0 }

// floatSyntax checks strtold's grammar for a number without its sign and base prefix: digits with
// an optional point (at least one digit), then an optional exponent with at least one digit. So
// "1e", "." and Go's own extras ("1_000", "0b1") are refused, as strtold refuses them.
func floatSyntax(s string, digit func(byte) bool, exponent byte) bool {
	i, n := 0, 0
	for ; i < len(s) && digit(s[i]); i++ {
		n++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && digit(s[i]); i++ {
			n++
		}
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i]|0x20) == exponent {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// addLongDouble adds in long double: false when the sum is infinite or NaN there.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(longDoublePrec).Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > longDoubleMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble is Redis's ld2string() in LD_STR_HUMAN mode ("%.17Lf", trailing zeros and a
// bare point removed, "-0" as "0"): 10.5 + 0.1 reads "10.6", 5.0e3 reads "5000".
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}
