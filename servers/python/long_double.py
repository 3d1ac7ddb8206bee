"""INCRBYFLOAT's numbers as Redis computes them: C long doubles, read with strtold() and printed
with "%.17Lf" then trimmed (servers/common/key_commands.cc, after Redis's string2ld/ld2string).

Python's float is a double, and "10.5 + 0.1" in doubles prints "10.59999999999999964" where Redis
(x86-64's 80-bit long double) prints "10.6". So each value is kept as the exact rational number a
long double holds (a Fraction rounded to the platform's long double precision and range), sums are
rounded the same way as the hardware rounds them (to nearest, ties to even), and printing rounds
the exact value to 17 decimals. On x86-64 this gives the C++ models' digits exactly; the cost
(a few microseconds an INCRBYFLOAT) is paid by that command alone.
"""
import platform
import re
from fractions import Fraction

# The platform's long double: significand bits and the least normal exponent.
if platform.machine() in ("x86_64", "AMD64", "i386", "i686"):
    MANT_DIG, MIN_EXP, MAX_EXP = 64, -16381, 16384  # x87 extended precision
elif platform.machine() in ("aarch64", "arm64", "s390x", "riscv64"):
    MANT_DIG, MIN_EXP, MAX_EXP = 113, -16381, 16384  # IEEE quad
else:
    MANT_DIG, MIN_EXP, MAX_EXP = 53, -1021, 1024  # long double is a double
# The smallest step of a subnormal, and the first power of two past the largest finite value.
_QUANTUM_EXP = MIN_EXP - MANT_DIG
_OVERFLOW = Fraction(2) ** MAX_EXP

INF = float("inf")
MAX_CHARS = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS

_DECIMAL = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_HEXADECIMAL = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


def round_to_long_double(value):
    """The long double nearest `value` (a Fraction), ties to even; +-INF past the largest."""
    if value == 0:
        return Fraction(0)
    magnitude = abs(value)
    # Scale so the significand has MANT_DIG bits, but never finer than a subnormal's step.
    top = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if magnitude < Fraction(2) ** top:
        top -= 1  # now 2**top <= magnitude < 2**(top + 1)
    exponent = max(top - MANT_DIG + 1, _QUANTUM_EXP)
    step = Fraction(2) ** exponent
    rounded = round(magnitude / step) * step  # Fraction's round() breaks ties to even
    if rounded >= _OVERFLOW:
        return INF if value > 0 else -INF
    return rounded if value > 0 else -rounded


def parse(text):
    """Redis's string2ld(): the long double `text` spells for strtold(), the whole argument, no
    leading blank, no NaN, no overflow, no underflow to zero; None when refused. Returns a
    Fraction, or +-INF for an infinity spelled out."""
    if not text or len(text) >= MAX_CHARS:
        return None
    match = _INFINITY.fullmatch(text)
    if match:
        return -INF if match.group(1) == b"-" else INF
    match = _DECIMAL.fullmatch(text)
    base = 10
    if match is None or not (match.group(2) or match.group(3)):
        match = _HEXADECIMAL.fullmatch(text)
        base = 2
        if match is None or not (match.group(2) or match.group(3)):
            return None
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or b""
    digits = int((whole + fraction) or b"0", 16 if base == 2 else 10)
    if digits == 0:
        return Fraction(0)
    power = int(exponent or b"0") - len(fraction) * (4 if base == 2 else 1)
    # Decide far-out exponents without building the number: past the range either way, strtold
    # says ERANGE (overflow, or underflow to zero), which string2ld refuses.
    digit_count = digits.bit_length() if base == 2 else len(str(digits))
    scale = 1 if base == 2 else 3.33
    if (digit_count + power) * scale > MAX_EXP + 64:
        return None
    if (digit_count + power) * scale < _QUANTUM_EXP - 64:
        return None
    value = round_to_long_double(Fraction(digits) * Fraction(base) ** power)
    if value in (INF, -INF) or value == 0:
        return None
    return -value if sign == b"-" else value


def add(a, b):
    """a + b rounded as the hardware rounds it; None for NaN or an infinity."""
    if isinstance(a, float) or isinstance(b, float):
        return None  # an infinity on either side makes an infinity or NaN
    total = round_to_long_double(a + b)
    return None if isinstance(total, float) else total


def format_human(value):
    """Redis's ld2string() in LD_STR_HUMAN mode: "%.17Lf", then trailing zeros and a bare point
    cut, and "-0" read as "0"."""
    scaled = round(value * 10**17)  # the exact value, rounded to 17 decimals, ties to even
    digits = str(abs(scaled)).rjust(18, "0")
    text = (digits[:-17] + "." + digits[-17:]).rstrip("0").rstrip(".")
    if scaled < 0 and text != "0":
        text = "-" + text
    return text.encode()
