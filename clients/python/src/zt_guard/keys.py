"""The pinned control-plane key and RFC 3339 instants (as integer nanoseconds, never floats)."""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from . import jcs
from .errors import KeyNotValid, KeyringError

__all__ = ["PinnedKey", "format_ns", "now_ns", "parse_rfc3339"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def parse_rfc3339(s: str) -> int | None:
    """Nanoseconds since the Unix epoch of an RFC 3339 date-time, or ``None``.

    ``2026-10-01T08:00:36.490Z`` and offsets (``+02:00``) are accepted; anything else
    (no offset, an impossible date, a leap second, more than 9 fraction digits) is ``None``.
    """
    m = _RFC3339.fullmatch(s)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    frac = m.group(7) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * 60 * (1 if m.group(9) == "+" else -1)
    secs = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return secs * 1_000_000_000 + nanos


def format_ns(ns: int) -> str:
    """RFC 3339 (UTC, millisecond precision) of nanoseconds since the epoch, for messages."""
    secs, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem // 1_000_000:03d}Z"


def now_ns() -> int:
    """The local clock, in nanoseconds since the Unix epoch."""
    return time.time_ns()


_ENTRY_MEMBERS = {"key_id", "public_key_pem", "not_before", "not_after", "revoked_at", "chains"}


@dataclass(frozen=True)
class PinnedKey:
    """The control plane's public key (P-256), pinned out of band, with its validity window.

    A decision signed at ``t`` rests on this key only when ``not_before <= t < not_after`` and
    ``t < revoked_at``; the window's end is checked at the local clock as well (whoever holds a
    withdrawn key chooses the timestamp it signs).
    """

    key_id: str
    public_key: ec.EllipticCurvePublicKey
    not_before: int | None = None
    not_after: int | None = None
    revoked_at: int | None = None
    #: The v1 chains this key signs (a control plane's two); ``None``: any.
    chains: tuple[str, ...] | None = None

    def binds(self, chain_id: str) -> bool:
        """Whether this key may sign a record of ``chain_id``."""
        return self.chains is None or chain_id in self.chains

    @classmethod
    def from_pem(
        cls,
        key_id: str,
        pem: str | bytes,
        *,
        not_before: str | None = None,
        not_after: str | None = None,
        revoked_at: str | None = None,
        chains: list[str] | None = None,
    ) -> "PinnedKey":
        """A key from its SPKI PEM (``-----BEGIN PUBLIC KEY-----``), optionally with a window."""
        if not isinstance(key_id, str) or not key_id:
            raise KeyringError("key_id is empty")
        raw = pem.encode("utf-8") if isinstance(pem, str) else pem
        try:
            public = load_pem_public_key(raw.strip() + b"\n")
        except (ValueError, TypeError) as e:
            raise KeyringError(f"key {key_id!r}: not a PEM public key: {e}") from e
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            raise KeyringError(f"key {key_id!r}: not a P-256 public key")

        def when(name: str, v: str | None) -> int | None:
            if v is None:
                return None
            if not isinstance(v, str):
                raise KeyringError(f"key {key_id!r}: {name} is not a string")
            t = parse_rfc3339(v)
            if t is None:
                raise KeyringError(f"key {key_id!r}: {name} {v!r} is not an RFC 3339 date-time")
            return t

        if chains is not None and (
            not isinstance(chains, list)
            or not chains
            or not all(isinstance(c, str) and c for c in chains)
        ):
            raise KeyringError(f"key {key_id!r}: chains must be a list of chain ids, none empty")
        return cls(
            key_id=key_id,
            public_key=public,
            not_before=when("not_before", not_before),
            not_after=when("not_after", not_after),
            revoked_at=when("revoked_at", revoked_at),
            chains=tuple(sorted(set(chains))) if chains is not None else None,
        )

    @classmethod
    def from_keyring_json(cls, data: bytes | str) -> "PinnedKey":
        """The one key of a zt-audit keyring (``keyring.json``), window included.

        Format: ``{"keys": [{"key_id", "public_key_pem", "not_before"?, "not_after"?,
        "revoked_at"?, "chains"?}]}``; unknown entry members, duplicate members and anything but exactly
        one key (one id; the same id twice must be the same key, the later window wins) are a
        :class:`KeyringError`.
        """
        try:
            doc = jcs.loads(data)
        except jcs.JsonError as e:
            raise KeyringError(f"keyring: not JSON: {e}") from e
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise KeyringError("keyring: expected an object with a `keys` array")
        found: dict[str, PinnedKey] = {}
        for index, raw in enumerate(keys):
            if not isinstance(raw, dict):
                raise KeyringError(f"keyring entry {index}: not an object")
            unknown = sorted(set(raw) - _ENTRY_MEMBERS)
            if unknown:
                raise KeyringError(f"keyring entry {index}: unknown member {unknown[0]!r}")
            key_id, pem = raw.get("key_id"), raw.get("public_key_pem")
            if not isinstance(key_id, str) or not isinstance(pem, str):
                raise KeyringError(
                    f"keyring entry {index}: `key_id` and `public_key_pem` must be strings"
                )
            times: dict[str, str | None] = {}
            for name in ("not_before", "not_after", "revoked_at"):
                v = raw.get(name)
                if v is not None and not isinstance(v, str):
                    raise KeyringError(f"keyring entry {index}: {name} is not a string")
                times[name] = v
            entry = cls.from_pem(key_id, pem, chains=raw.get("chains"), **times)
            old = found.get(key_id)
            if old is not None and old.public_key != entry.public_key:
                raise KeyringError(f"keyring: key id {key_id!r} names two different keys")
            found[key_id] = entry
        if len(found) != 1:
            raise KeyringError(
                f"pinned key: expected exactly one key in the keyring, found {len(found)}"
            )
        return next(iter(found.values()))

    def _violation(self, t: int) -> str | None:
        if self.not_before is not None and t < self.not_before:
            return f"key not valid before {format_ns(self.not_before)}"
        if self.revoked_at is not None and t >= self.revoked_at:
            return f"key revoked at {format_ns(self.revoked_at)}"
        if self.not_after is not None and t >= self.not_after:
            return f"key expired at {format_ns(self.not_after)}"
        return None

    def check_window(self, signed_at: int, now: int) -> None:
        """Raises :class:`KeyNotValid` unless a decision signed at ``signed_at`` and received at
        ``now`` (both nanoseconds since the epoch) may rest on this key.

        The whole window is checked at the signing time; its end (``not_after``,
        ``revoked_at``) at ``now`` too; its start is not checked at ``now`` (a key rotated in a
        moment ago is not refused over a clock difference the skew already tolerates).
        """
        v = self._violation(signed_at)
        if v is not None:
            raise KeyNotValid(self.key_id, format_ns(signed_at), v)
        v = self._violation(now)
        if v is not None and not v.startswith("key not valid before"):
            raise KeyNotValid(self.key_id, format_ns(now), v)
