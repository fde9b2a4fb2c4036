"""Test helper: seal v1 envelopes in the control plane's HTTP answer shape with a local key."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

import _paths  # noqa: F401
from zt_guard import PinnedKey, jcs

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def keyring_json(key: ec.EllipticCurvePrivateKey, key_id: str, **window: str) -> bytes:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    entry: dict[str, Any] = {"key_id": key_id, "public_key_pem": pem}
    entry.update(window)
    return json.dumps({"keys": [entry]}).encode()


def pinned(key: ec.EllipticCurvePrivateKey, key_id: str = "cp-test", **window: str) -> PinnedKey:
    return PinnedKey.from_keyring_json(keyring_json(key, key_id, **window))


def now_text(offset_s: float = 0.0) -> str:
    t = time.time() + offset_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def sign_digest(key: ec.EllipticCurvePrivateKey, digest: bytes, high_s: bool = False) -> str:
    der = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(der)
    low = min(s, P256_N - s)
    s = P256_N - low if high_s else low
    return base64.b64encode(utils.encode_dss_signature(r, s)).decode()


def seal(
    key: ec.EllipticCurvePrivateKey,
    *,
    key_id: str = "cp-test",
    actor: str = "agent-a",
    action: str = "tool.run",
    resource: str = "r/1",
    decision: str = "allow",
    request_id: str = "req-1",
    request_context: Any = None,
    timestamp: str | None = None,
    high_s: bool = False,
    extra: dict[str, Any] | None = None,
    edit: Any = None,
) -> bytes:
    """An HTTP answer: subject on top, the rest under `audit`. `edit(record)` may change the
    hashed record before it is hashed and signed."""
    ctx: dict[str, Any] = {"request_id": request_id, "policy_id": "p", "broker": "test"}
    if request_context is not None:
        ctx["request"] = request_context
    record: dict[str, Any] = {
        "version": 1,
        "chain_id": "cp-test",
        "seq": 0,
        "actor": actor,
        "action": action,
        "resource": resource,
        "decision": decision,
        "reason": "because",
        "timestamp": timestamp or now_text(),
        "previous_hash": "0" * 64,
        "signer": {"algorithm": "ECDSA_SHA_256", "key_id": key_id},
        "context": ctx,
    }
    if extra:
        record.update(extra)
    if edit is not None:
        edit(record)
    digest = hashlib.sha256(jcs.canonicalize(record)).digest()
    record["current_hash"] = digest.hex()
    record["kms_signature"] = {
        "algorithm": "ECDSA_SHA_256",
        "key_id": key_id,
        "signature": sign_digest(key, digest, high_s),
    }
    top: dict[str, Any] = {"ok": True}
    audit: dict[str, Any] = {}
    for k, v in record.items():
        (top if k in ("actor", "action", "resource", "decision", "reason") else audit)[k] = v
    top["audit"] = audit
    return json.dumps(top).encode()
