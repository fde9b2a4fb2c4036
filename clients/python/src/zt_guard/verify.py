"""Verification of one ``POST /actions`` answer: the checks of the Rust client's
``verify_answer``, in the same order, with the same refusal kinds.

Pure: the clock is an argument and the replay cache is the caller's (:class:`GuardedClient`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from . import jcs
from .errors import (
    BadSignature,
    ContextMismatch,
    HashMismatch,
    HttpError,
    Malformed,
    Mismatch,
    MissingAudit,
    Replay,
    Stale,
    UnauthorizedSigner,
    WrongKey,
)
from .keys import PinnedKey, parse_rfc3339

__all__ = ["ALGORITHM", "MAX_ANSWER", "VerifiedDecision", "verify_answer", "verify_sealed"]

#: The only signature algorithm label that verifies (AWS KMS ``SigningAlgorithm``).
ALGORITHM = "ECDSA_SHA_256"
#: Largest answer read, in bytes.
MAX_ANSWER = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)


@dataclass(frozen=True)
class VerifiedDecision:
    """A decision whose envelope verified (allow or deny)."""

    #: ``allow`` or ``deny``.
    decision: str
    #: The envelope as a record: the answer flattened (``audit``'s members beside the others,
    #: ``ok`` dropped), one line of JSON, members in answer order.
    envelope: str
    current_hash: str
    chain_id: str
    seq: int
    reason: str
    timestamp: str
    #: The HTTP status it came with.
    status: int


def _short(s: str) -> str:
    return s if len(s) <= 80 else s[:80] + "…"


def _short_bytes(b: bytes) -> str:
    return _short(b.decode("utf-8", "replace"))


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _flatten(top: Mapping[str, Any]) -> dict[str, Any]:
    """The record inside an HTTP answer: every member but ``ok`` and ``audit``, then
    ``audit``'s; a member in both must be the same value (else malformed)."""
    out: dict[str, Any] = {k: v for k, v in top.items() if k not in ("ok", "audit")}
    audit = top.get("audit")
    if not isinstance(audit, dict):
        raise Malformed(f"not an audit envelope: `audit` must be an object, found {_type_name(audit)}")
    for k, v in audit.items():
        if k in out:
            if jcs.canonicalize(out[k]) != jcs.canonicalize(v):
                raise Malformed(f"not an audit envelope: `{k}` differs between the answer and its audit")
        else:
            out[k] = v
    return out


@dataclass(frozen=True)
class _Sealed:
    members: dict[str, Any]
    hashed: dict[str, Any]
    current_hash: str
    signed_at: int
    chain_id: str
    seq: int


def _check_sealed(top: Mapping[str, Any], pinned: PinnedKey, now: int) -> _Sealed:
    """A v1 envelope whose hash recomputes, signed by the pinned key inside its window."""
    members = _flatten(top)

    def req_str(field: str) -> str:
        v = members.get(field)
        if v is None and field not in members:
            raise Malformed(f"not an audit envelope: missing `{field}`")
        if not isinstance(v, str):
            raise Malformed(f"not an audit envelope: `{field}` must be a string, found {_type_name(v)}")
        return v

    for field in ("actor", "action", "decision", "reason", "timestamp"):
        req_str(field)
    if "resource" in members and not isinstance(members["resource"], str):
        raise Malformed("not an audit envelope: `resource` must be a string")
    if members["decision"] not in ("allow", "deny"):
        raise Malformed(f"not an audit envelope: decision must be \"allow\" or \"deny\", found {_short(members['decision'])!r}")
    signed_at = parse_rfc3339(members["timestamp"])
    if signed_at is None:
        raise Malformed(f"not an audit envelope: timestamp {_short(members['timestamp'])!r} is not an RFC 3339 date-time")
    for field in ("previous_hash", "current_hash"):
        if not _HEX64.fullmatch(req_str(field)):
            raise Malformed(f"not an audit envelope: `{field}` is not 64 lowercase hex digits")
    sig = members.get("kms_signature")
    sig_fields = {"algorithm": "", "key_id": "", "signature": ""}
    if isinstance(sig, dict):
        for k in sig_fields:
            v = sig.get(k, "")
            if not isinstance(v, str):
                raise Malformed(f"not an audit envelope: `kms_signature.{k}` must be a string")
            sig_fields[k] = v
    elif sig is not None:
        raise Malformed("not an audit envelope: `kms_signature` must be an object")
    if "version" not in members:
        raise Malformed("not a v1 envelope (no version, chain id, seq)")
    version = members["version"]
    if isinstance(version, bool) or not isinstance(version, (int, float)) or version != 1:
        raise Malformed(f"not an audit envelope: unsupported envelope version {_short(jcs.canonicalize(version).decode())}")
    chain_id = req_str("chain_id")
    if not chain_id:
        raise Malformed("not an audit envelope: `chain_id` must not be empty")
    seq = members.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, (int, float)):
        raise Malformed("not an audit envelope: `seq` must be a number")
    if seq != int(seq) or not 0 <= seq <= jcs.MAX_EXACT_INTEGER:
        raise Malformed(f"not an audit envelope: `seq` must be an integer in 0..=2^53-1, found {seq}")
    signer = members.get("signer")
    if not isinstance(signer, dict):
        raise Malformed("not an audit envelope: `signer` must be an object")
    for k in ("key_id", "algorithm"):
        if not isinstance(signer.get(k), str):
            raise Malformed(f"not an audit envelope: `signer.{k}` must be a string")

    hashed = {k: v for k, v in members.items() if k not in ("current_hash", "kms_signature", "daal")}
    try:
        computed = hashlib.sha256(jcs.canonicalize(hashed)).hexdigest()
    except (TypeError, ValueError) as e:
        raise Malformed(str(e)) from e
    claimed = members["current_hash"]
    if computed != claimed:
        raise HashMismatch(claimed, computed)

    pinned_id = pinned.key_id
    if (
        sig_fields["algorithm"] != ALGORITHM
        or sig_fields["key_id"] != pinned_id
        or signer["key_id"] != pinned_id
        or signer["algorithm"] != ALGORITHM
    ):
        raise WrongKey(pinned_id, sig_fields["key_id"], sig_fields["algorithm"])
    b64 = sig_fields["signature"].strip()
    if not _B64.fullmatch(b64):
        raise BadSignature(pinned_id)
    try:
        der = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature(pinned_id) from None
    try:
        pinned.public_key.verify(
            der, bytes.fromhex(claimed), ec.ECDSA(utils.Prehashed(hashes.SHA256()))
        )
    except (InvalidSignature, ValueError):
        raise BadSignature(pinned_id) from None
    # The pinned key made this signature; a key that was not valid then (or has been
    # withdrawn since) vouches for nothing, nor does one signing a chain it is not bound to.
    pinned.check_window(signed_at, now)
    if not pinned.binds(chain_id):
        raise UnauthorizedSigner(pinned_id, chain_id, pinned.chains or ())
    return _Sealed(members, hashed, claimed, signed_at, chain_id, int(seq))


def _parse_object(status: int, body: bytes) -> dict[str, Any]:
    try:
        value = jcs.loads(body)
    except jcs.JsonError as e:
        if status == 200:
            raise Malformed(f"not JSON: {e}") from None
        raise HttpError(status, _short_bytes(body)) from None
    if not isinstance(value, dict):
        raise Malformed(f"a JSON {_type_name(value)}, not an object")
    return value


def verify_sealed(body: bytes, pinned: PinnedKey, now: int) -> str:
    """Verifies a record the control plane sealed for something other than a decision (hash
    and pinned signature inside the key's window); its ``current_hash`` back."""
    try:
        value = jcs.loads(body)
    except jcs.JsonError as e:
        raise Malformed(f"not JSON: {e}") from None
    if not isinstance(value, dict) or "audit" not in value:
        raise MissingAudit()
    return _check_sealed(value, pinned, now).current_hash


def verify_answer(
    status: int,
    body: bytes,
    *,
    actor: str,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None,
    request_id: str,
    pinned: PinnedKey,
    now: int,
    max_skew: float,
) -> VerifiedDecision:
    """Verifies one answer of ``POST /actions``: a :class:`VerifiedDecision` (allow with HTTP
    200, or deny) or a :class:`~zt_guard.errors.Refusal`. ``now`` is nanoseconds since the
    epoch; ``max_skew`` seconds. The caller still checks replays against what it accepted
    before, and turns a verified deny into :class:`~zt_guard.errors.Denied`.
    """
    top = _parse_object(status, body)
    if "audit" not in top:
        if status == 200:
            raise MissingAudit()
        err = top.get("error")
        raise HttpError(status, _short(err) if isinstance(err, str) else _short_bytes(body))
    sealed = _check_sealed(top, pinned, now)
    m = sealed.members
    # Signed by the control plane: now, is it about this request?
    for field, asked, answered in (
        ("actor", actor, m["actor"]),
        ("action", action, m["action"]),
        ("resource", resource, m.get("resource", "")),
    ):
        if asked != answered:
            raise Mismatch(field, asked, answered)
    # The rest of the request is in the signed context: read it from the hashed members.
    ctx = sealed.hashed.get("context")
    if "context" in sealed.hashed and not isinstance(ctx, dict):
        raise Malformed(f"the envelope's `context` is a JSON {_type_name(ctx)}, not an object")
    answered_id = ctx.get("request_id") if isinstance(ctx, dict) else None
    if not isinstance(answered_id, str) or answered_id != request_id:
        shown = answered_id if isinstance(answered_id, str) else "(none)"
        raise Replay(f"the envelope answers request {_short(shown)}, not {request_id}")
    asked_c = jcs.canonicalize(dict(context)) if context is not None else None
    answered_c = (
        jcs.canonicalize(ctx["request"]) if isinstance(ctx, dict) and "request" in ctx else None
    )
    if asked_c != answered_c:
        raise ContextMismatch(
            _short_bytes(asked_c) if asked_c is not None else None,
            _short_bytes(answered_c) if answered_c is not None else None,
        )
    skew_ns = abs(now - sealed.signed_at)
    max_ns = int(max_skew * 1_000_000_000)
    if skew_ns > max_ns:
        raise Stale(m["timestamp"], skew_ns // 1_000_000, max_ns // 1_000_000)
    decision = VerifiedDecision(
        decision=m["decision"],
        envelope=_record_line(m),
        current_hash=sealed.current_hash,
        chain_id=sealed.chain_id,
        seq=sealed.seq,
        reason=m["reason"],
        timestamp=m["timestamp"],
        status=status,
    )
    if decision.decision == "allow" and status != 200:
        raise Malformed(f"a signed allow came with HTTP status {status}")
    return decision


def _record_line(members: Mapping[str, Any]) -> str:
    """One line of JSON, members in the given order, values in RFC 8785 form."""
    parts = [
        jcs.canonicalize(k).decode("utf-8") + ":" + jcs.canonicalize(v).decode("utf-8")
        for k, v in members.items()
    ]
    return "{" + ",".join(parts) + "}"
