"""Every check of verify_answer on envelopes sealed locally (the clock is an argument)."""

from __future__ import annotations

import base64
import json
import time
import unittest
from typing import Any

import _paths  # noqa: F401
import sealing
from zt_guard import (
    Allowed, BadSignature, ContextMismatch, HashMismatch, HttpError, KeyNotValid, KeyringError,
    Malformed, Mismatch, MissingAudit, PinnedKey, Replay, Stale, UnauthorizedSigner, WrongKey,
    verify_answer,
)
from zt_guard.keys import now_ns, parse_rfc3339

KEY = sealing.new_key()
PIN = sealing.pinned(KEY)


def check(body: bytes, status: int = 200, pinned: PinnedKey = PIN, now: int | None = None,
          context: Any = None, resource: str = "r/1", request_id: str = "req-1",
          max_skew: float = 30.0) -> Any:
    return verify_answer(status, body, actor="agent-a", action="tool.run", resource=resource,
                         context=context, request_id=request_id, pinned=pinned,
                         now=now if now is not None else now_ns(), max_skew=max_skew)


def edited(body: bytes, fn: Any) -> bytes:
    doc = json.loads(body)
    fn(doc)
    return json.dumps(doc).encode()


class VerifyAnswer(unittest.TestCase):
    def test_a_sealed_allow_verifies(self) -> None:
        d = check(sealing.seal(KEY))
        self.assertEqual((d.decision, d.status, d.seq), ("allow", 200, 0))
        self.assertIn('"decision":"allow"', d.envelope)

    def test_high_s_signatures_are_valid(self) -> None:
        self.assertEqual(check(sealing.seal(KEY, high_s=True)).decision, "allow")

    def test_a_sealed_deny_is_a_verified_deny(self) -> None:
        self.assertEqual(check(sealing.seal(KEY, decision="deny"), status=403).decision, "deny")

    def test_an_allow_with_another_status_is_malformed(self) -> None:
        with self.assertRaisesRegex(Malformed, "HTTP status 403"):
            check(sealing.seal(KEY), status=403)

    def test_edits_break_the_hash(self) -> None:
        body = sealing.seal(KEY)
        for path in (("reason",), ("audit", "context", "policy_id"), ("audit", "seq")):
            def change(doc: Any, path: tuple = path) -> None:
                target = doc
                for k in path[:-1]:
                    target = target[k]
                target[path[-1]] = 7 if path[-1] == "seq" else "edited"
            with self.subTest(path=path):
                with self.assertRaises(HashMismatch):
                    check(edited(body, change))

    def test_a_member_added_to_the_answer_is_hashed(self) -> None:
        with self.assertRaises(HashMismatch):
            check(edited(sealing.seal(KEY), lambda d: d.update(extra="x")))

    def test_conflicting_copies_are_malformed(self) -> None:
        body = edited(sealing.seal(KEY), lambda d: d["audit"].update(reason="other"))
        with self.assertRaisesRegex(Malformed, "differs"):
            check(body)

    def test_other_keys_and_bad_signatures(self) -> None:
        other = sealing.new_key()
        with self.assertRaises(WrongKey):
            check(sealing.seal(other, key_id="cp-other"))
        with self.assertRaises(BadSignature):
            check(sealing.seal(other))  # same key id, another key
        with self.assertRaises(WrongKey):
            check(edited(sealing.seal(KEY), lambda d: d["audit"]["kms_signature"].update(algorithm="none")))
        with self.assertRaises(WrongKey):  # signer is hashed: re-sealed with another signer id
            check(sealing.seal(KEY, edit=lambda r: r["signer"].update(key_id="cp-x")))
        for sig in ("", "!!!", base64.b64encode(b"\x30\x02\x01\x01").decode()):
            with self.subTest(sig=sig):
                with self.assertRaises(BadSignature):
                    check(edited(sealing.seal(KEY), lambda d, s=sig: d["audit"]["kms_signature"].update(signature=s)))

    def test_key_windows(self) -> None:
        past = "2020-01-01T00:00:00Z"
        future = "2099-01-01T00:00:00Z"
        body = sealing.seal(KEY)
        with self.assertRaisesRegex(KeyNotValid, "expired"):
            check(body, pinned=sealing.pinned(KEY, not_after=past))
        with self.assertRaisesRegex(KeyNotValid, "revoked"):
            check(body, pinned=sealing.pinned(KEY, revoked_at=past))
        with self.assertRaisesRegex(KeyNotValid, "not valid before"):
            check(body, pinned=sealing.pinned(KEY, not_before=future))
        self.assertEqual(check(body, pinned=sealing.pinned(KEY, not_before=past, not_after=future)).decision, "allow")
        # signed inside the window, but the key was revoked since: refused at the local clock
        in_window = sealing.seal(KEY, timestamp="2030-01-01T00:00:00.000Z")
        pin = sealing.pinned(KEY, revoked_at="2030-06-01T00:00:00Z")
        with self.assertRaisesRegex(KeyNotValid, "revoked"):
            check(in_window, pinned=pin, now=parse_rfc3339("2030-07-01T00:00:00Z"), max_skew=1e9)

    def test_subject_mismatch(self) -> None:
        with self.assertRaises(Mismatch) as cm:
            check(sealing.seal(KEY, resource="r/2"))
        self.assertEqual(cm.exception.field, "resource")
        with self.assertRaises(Mismatch):
            check(sealing.seal(KEY, actor="agent-b"))
        with self.assertRaises(Mismatch):  # no resource member answers resource ""
            check(sealing.seal(KEY, edit=lambda r: r.pop("resource")))
        self.assertEqual(check(sealing.seal(KEY, edit=lambda r: r.pop("resource")), resource="").decision, "allow")

    def test_request_id_and_context(self) -> None:
        with self.assertRaisesRegex(Replay, "answers request req-old"):
            check(sealing.seal(KEY, request_id="req-old"))
        with self.assertRaises(ContextMismatch):
            check(sealing.seal(KEY, request_context={"n": 1}))
        with self.assertRaises(ContextMismatch):
            check(sealing.seal(KEY), context={"n": 1})
        with self.assertRaises(ContextMismatch):
            check(sealing.seal(KEY, request_context={"n": 2}), context={"n": 1})
        with self.assertRaises(ContextMismatch):  # absent and {} differ
            check(sealing.seal(KEY, request_context={}))
        # equal in RFC 8785 form: member order and number spelling do not matter
        ok = sealing.seal(KEY, request_context={"b": [1.0, "x"], "a": {"z": True, "y": None}})
        self.assertEqual(check(ok, context={"a": {"y": None, "z": True}, "b": [1, "x"]}).decision, "allow")
        with self.assertRaisesRegex(Malformed, "context"):
            check(sealing.seal(KEY, edit=lambda r: r.update(context="x")))

    def test_stale(self) -> None:
        with self.assertRaises(Stale):
            check(sealing.seal(KEY, timestamp=sealing.now_text(-120)))
        with self.assertRaises(Stale):
            check(sealing.seal(KEY, timestamp=sealing.now_text(+120)))

    def test_not_an_envelope(self) -> None:
        cases = {
            b"not json": Malformed,
            b"[1]": Malformed,
            b'{"ok":true,"decision":"allow"}': MissingAudit,
            b'{"ok":true,"decision":"allow","decision":"allow","audit":{}}': Malformed,
            sealing.seal(KEY, extra={"n": 2**53}).replace(b"9007199254740992", b"9007199254740993"): Malformed,
            edited(sealing.seal(KEY), lambda d: d["audit"].pop("version")): Malformed,
            sealing.seal(KEY, extra={"version": 2}): Malformed,
            sealing.seal(KEY, extra={"seq": 1.5}): Malformed,
            sealing.seal(KEY, extra={"chain_id": ""}): Malformed,
            sealing.seal(KEY, timestamp="yesterday"): Malformed,
            sealing.seal(KEY, decision="maybe"): Malformed,
            edited(sealing.seal(KEY), lambda d: d.update(audit=[])): Malformed,
            edited(sealing.seal(KEY), lambda d: d["audit"].update(current_hash="AB" * 32)): Malformed,
        }
        for body, kind in cases.items():
            with self.subTest(body=body[:60]):
                with self.assertRaises(kind):
                    check(body)

    def test_http_errors(self) -> None:
        with self.assertRaisesRegex(HttpError, "HTTP 503.*queue full"):
            check(b'{"ok":false,"error":"queue full"}', status=503)
        with self.assertRaisesRegex(HttpError, "HTTP 502"):
            check(b"<html>bad gateway</html>", status=502)


class Keyrings(unittest.TestCase):
    def test_exactly_one_key(self) -> None:
        with open(_paths.FIXTURES + "/v1/keyring.json", "rb") as f:
            two = f.read()
        with self.assertRaisesRegex(KeyringError, "exactly one key"):
            PinnedKey.from_keyring_json(two)
        with self.assertRaisesRegex(KeyringError, "exactly one key"):
            PinnedKey.from_keyring_json(b'{"keys":[]}')
        doc = json.loads(two)
        doc["keys"] = doc["keys"][1:]
        one = PinnedKey.from_keyring_json(json.dumps(doc).encode())
        self.assertEqual(one.key_id, "test-only-b-expired")
        self.assertEqual(one.not_after, parse_rfc3339("2026-09-30T00:00:00Z"))

    def test_bad_keyrings(self) -> None:
        good = json.loads(sealing.keyring_json(KEY, "k"))
        for change in (
            lambda e: e.update(public_key_pem="nope"),
            lambda e: e.update(extra=1),
            lambda e: e.update(not_after="soon"),
            lambda e: e.update(key_id=""),
        ):
            doc = json.loads(json.dumps(good))
            change(doc["keys"][0])
            with self.assertRaises(KeyringError):
                PinnedKey.from_keyring_json(json.dumps(doc).encode())
        with self.assertRaises(KeyringError):
            PinnedKey.from_keyring_json(b'{"keys":[],"keys":[]}')
        for chains in ([], [""], "cp-test", [1]):
            doc = json.loads(json.dumps(good))
            doc["keys"][0]["chains"] = chains
            with self.assertRaises(KeyringError):
                PinnedKey.from_keyring_json(json.dumps(doc).encode())

    def test_a_key_bound_to_chains_signs_only_those(self) -> None:
        # the sealed answers are of chain cp-test
        bound = PinnedKey.from_keyring_json(json.dumps({"keys": [dict(
            json.loads(sealing.keyring_json(KEY, "cp-test"))["keys"][0],
            chains=["cp-test", "cp-test.admin"])]}).encode())
        self.assertEqual(check(sealing.seal(KEY), pinned=bound).decision, "allow")
        other = PinnedKey.from_keyring_json(json.dumps({"keys": [dict(
            json.loads(sealing.keyring_json(KEY, "cp-test"))["keys"][0], chains=["cp-b"])]}).encode())
        with self.assertRaisesRegex(UnauthorizedSigner, "chain 'cp-test'.*signs only cp-b"):
            check(sealing.seal(KEY), pinned=other)


class AllowedCannotBeForged(unittest.TestCase):
    def test_construction_and_reuse(self) -> None:
        d = check(sealing.seal(KEY))
        with self.assertRaises(TypeError):
            Allowed(d)
        with self.assertRaises(TypeError):
            Allowed(d, _mint=object())
        with self.assertRaises(TypeError):
            class Sub(Allowed):  # noqa: F841
                pass
        forged = object.__new__(Allowed)
        ran = []
        with self.assertRaises(Replay):
            forged.run(ran.append, 1)
        self.assertEqual(ran, [])


if __name__ == "__main__":
    unittest.main()
