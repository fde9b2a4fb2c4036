"""A JSONL reader that splits on ``\\n`` only.

``str.splitlines()`` also splits on U+2028, U+2029, U+0085, \\v, \\f, \\x1c..\\x1e, which may
appear raw inside JSON strings: a record holding one would be cut in two. Lines are split on
``\\n`` alone (a trailing ``\\r`` is JSON whitespace); blank lines are skipped.
"""

from __future__ import annotations

from typing import Iterator

from . import jcs

__all__ = ["iter_jsonl"]


def iter_jsonl(data: bytes | str, *, exact_numbers: bool = True) -> Iterator[tuple[int, jcs.JsonValue]]:
    """``(line_number, value)`` for each non-blank line (1-based), parsed under I-JSON rules;
    a line that is not I-JSON raises :class:`~zt_guard.jcs.JsonError` naming its number."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip(b" \t\r"):
            continue
        try:
            yield number, jcs.loads(line, exact_numbers=exact_numbers)
        except jcs.JsonError as e:
            raise jcs.JsonError(f"line {number}: {e}") from None
