"""RFC 8785 (JSON Canonicalization Scheme) and I-JSON parsing, as the v1 envelope needs them.

Parsing (:func:`loads`) follows I-JSON (RFC 7493), like the Rust verifier (``zt_core::json``):

- duplicate member names are refused (``object_pairs_hook``);
- strings must be valid Unicode (no lone surrogates, which ``json.loads`` would let through);
- non-finite numbers (``1e999``, ``NaN``, ``Infinity``) are refused;
- with ``exact_numbers=True`` (the default, what evidence needs) an integer-form number text (no
  fraction, no exponent) that no double holds exactly is refused: ``9007199254740993`` is
  that integer to this reader (Python keeps integers exact) and the double 9007199254740992 to
  an ECMAScript one, so one record would hold two values under one hash. Every other number
  text is fine, however large: ``1e+21``, ``1e20``, ``100000000000000000000`` (10^20 exactly),
  ``0.1``. The Rust core applies the same rule (``zt_core::json::parse``).

Every JSON number is an IEEE 754 double (RFC 8785 §3.2.2.3). Integers inside -(2^53-1)..=2^53-1
are kept as ``int`` (their double is exact, and their ECMAScript form is their decimal form);
other numbers become ``float``. ``True``/``False`` are never confused with ``1``/``0``.

Serialization (:func:`canonicalize`): members sorted by their UTF-16 code units, strings
escaped per §3.2.2.2 (only ``"``, ``\\`` and U+0000..U+001F; ``\\b \\t \\n \\f \\r`` short
forms, other controls as lowercase ``\\u00xx``), numbers in ECMAScript
``Number.prototype.toString`` form (§3.2.2.3). The output is UTF-8 bytes.
"""

from __future__ import annotations

import json
import math
from typing import Any, Union

__all__ = [
    "MAX_EXACT_INTEGER",
    "JsonError",
    "JsonValue",
    "canonicalize",
    "es6_number",
    "loads",
    "utf16_key",
]

#: 2^53 - 1, ECMAScript's ``Number.MAX_SAFE_INTEGER``.
MAX_EXACT_INTEGER = (1 << 53) - 1

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]


class JsonError(ValueError):
    """Not I-JSON: unparseable, a duplicate member, a lone surrogate, a number out of range."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonError(f"duplicate member name `{key[:64]}`")
        out[key] = value
    return out


def _check_strings(value: Any, depth: int = 0) -> None:
    """Refuses lone surrogates anywhere (keys included) and nesting past 128 levels."""
    if depth > 128:
        raise JsonError("nesting deeper than 128 levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise JsonError("a string holds a lone surrogate") from e
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)
    elif isinstance(value, dict):
        for k, item in value.items():
            _check_strings(k, depth + 1)
            _check_strings(item, depth + 1)


def loads(text: bytes | str, *, exact_numbers: bool = True) -> JsonValue:
    """Parses one JSON text under the I-JSON rules above; :class:`JsonError` otherwise."""

    def parse_int(s: str) -> int | float:
        n = int(s)
        if abs(n) <= MAX_EXACT_INTEGER:
            return n
        try:
            f = float(n)  # correctly rounded to the nearest double
        except OverflowError as e:
            raise JsonError("number out of the IEEE 754 double range") from e
        if exact_numbers and f != n:  # int and float compare exactly
            raise JsonError(
                f"number {s[:40]} is an integer no double holds exactly: read exactly it is "
                f"another value than the double {es6_number(f)} a hash covers (I-JSON)"
            )
        return f

    def parse_float(s: str) -> float | int:
        f = float(s)
        if not math.isfinite(f):
            raise JsonError("number out of the IEEE 754 double range")
        return f

    def parse_constant(s: str) -> Any:
        raise JsonError(f"{s} is not JSON")

    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"not UTF-8: {e}") from e
    if text.startswith("\ufeff"):
        raise JsonError("a byte order mark is not JSON")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=parse_constant,
        )
    except JsonError:
        raise
    except RecursionError as e:
        raise JsonError("nesting too deep") from e
    except ValueError as e:
        raise JsonError(str(e)) from e
    _check_strings(value)
    return value  # type: ignore[no-any-return]


def utf16_key(s: str) -> bytes:
    """Sort key of RFC 8785 §3.2.3: UTF-16 code units (big-endian bytes compare the same)."""
    return s.encode("utf-16-be", "surrogatepass")


def es6_number(f: float | int) -> str:
    """ECMAScript ``Number.prototype.toString`` of a double (RFC 8785 §3.2.2.3)."""
    if isinstance(f, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(f, int):
        if abs(f) <= MAX_EXACT_INTEGER:
            return str(f)
        f = float(f)
    if not math.isfinite(f):
        raise ValueError("NaN and infinities have no JSON form")
    if f == 0.0:
        return "0"  # -0 too
    sign = "-" if f < 0 else ""
    # repr gives the shortest digit string that round-trips (the same digits ES6 requires).
    r = repr(abs(f))
    mantissa, _, exp_text = r.partition("e")
    exp = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # value = 0.<int_part><frac_part> * 10^(len(int_part) + exp), before stripping zeros
    n = len(int_part) + exp - (len(int_part + frac_part) - len((int_part + frac_part).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        e_text = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + e_text
    return sign + out


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _string(s: str, out: list[str]) -> None:
    out.append('"')
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')


def _write(value: Any, out: list[str], depth: int) -> None:
    if depth > 256:
        raise ValueError("nesting too deep to canonicalize")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, (int, float)):
        out.append(es6_number(value))
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object member names must be strings, found {type(key).__name__}")
        out.append("{")
        for i, key in enumerate(sorted(value, key=utf16_key)):
            if i:
                out.append(",")
            _string(key, out)
            out.append(":")
            _write(value[key], out, depth + 1)
        out.append("}")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical form of ``value`` (dict, list, str, int, float, bool, None), UTF-8.

    Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for a non-finite
    number or a lone surrogate.
    """
    out: list[str] = []
    _write(value, out, 0)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("a string holds a lone surrogate") from e
