"""RFC 8785 canonicalization and I-JSON parsing against the repository's fixtures."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

import _paths
from zt_guard import iter_jsonl, jcs

RFC8785 = os.path.join(_paths.FIXTURES, "rfc8785")
V1 = os.path.join(_paths.FIXTURES, "v1")


class Rfc8785Vectors(unittest.TestCase):
    def test_reference_vectors_byte_for_byte(self) -> None:
        names = sorted(os.listdir(os.path.join(RFC8785, "input")))
        self.assertEqual(len(names), 6)
        for name in names:
            with self.subTest(vector=name):
                with open(os.path.join(RFC8785, "input", name), "rb") as f:
                    value = jcs.loads(f.read(), exact_numbers=False)
                with open(os.path.join(RFC8785, "output", name), "rb") as f:
                    want = f.read()
                self.assertEqual(jcs.canonicalize(value), want)

    def test_number_samples(self) -> None:
        rows = 0
        with open(os.path.join(RFC8785, "numbers.txt")) as f:
            for line in f.read().split("\n"):
                if not line.strip():
                    continue
                bits, want = line.split(" ", 1)
                value = struct.unpack(">d", bytes.fromhex(bits))[0]
                with self.subTest(bits=bits):
                    self.assertEqual(jcs.es6_number(value), want)
                rows += 1
        self.assertGreaterEqual(rows, 20)

    def test_more_numbers(self) -> None:
        for value, want in [
            (1.0, "1"), (-0.0, "0"), (0.1, "0.1"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
            (123e-20, "1.23e-18"), (0.000001, "0.000001"), (1e-7, "1e-7"), (-5, "-5"),
            (2**53 - 1, "9007199254740991"), (1.5e300, "1.5e+300"),
        ]:
            with self.subTest(value=value):
                self.assertEqual(jcs.es6_number(value), want)

    def test_utf16_member_order(self) -> None:
        # U+1F602 (surrogates D83D ...) sorts before U+FB33 in UTF-16, after it in code points.
        got = jcs.canonicalize({"\ufb33": 1, "\U0001f602": 2, "a": 3})
        self.assertEqual(got, '{"a":3,"\U0001f602":2,"\ufb33":1}'.encode("utf-8"))

    def test_string_escapes(self) -> None:
        got = jcs.canonicalize("\"\\\b\f\n\r\t\x00\x1f\x7f\u2028é")
        self.assertEqual(got, '"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028é"'.encode("utf-8"))

    def test_booleans_are_not_numbers(self) -> None:
        self.assertEqual(jcs.canonicalize([True, 1, False, 0, None]), b"[true,1,false,0,null]")


class AgainstNode(unittest.TestCase):
    """A million doubles as Node's ``JSON.stringify`` writes them (scripts/numbers.mjs, the
    ECMAScript algorithm RFC 8785 adopts), byte for byte, and the reading rule against BigInt's
    verdict: the same corpus the Rust core is held to."""

    def test_a_million_doubles_match_json_stringify_and_the_exactness_rule(self) -> None:
        node = shutil.which("node")
        self.assertIsNotNone(node, "node on PATH (scripts/test.sh needs Node.js)")
        with tempfile.TemporaryDirectory() as d:
            corpus = os.path.join(d, "corpus.txt")
            subprocess.run([node, os.path.join(_paths.REPO, "scripts", "numbers.mjs"),
                            "corpus", corpus, "1000000"], check=True)
            with open(corpus) as f:
                lines = f.read().split("\n")
        rows = inexact = 0
        for line in lines:
            if not line:
                continue
            bits, want, verdict = line.split(" ")
            value = struct.unpack(">d", bytes.fromhex(bits))[0]
            got = jcs.es6_number(value)
            if got != want:
                self.fail(f"bits {bits}: {got} != {want}")
            try:
                back = jcs.loads(want)
            except jcs.JsonError as e:
                if verdict != "inexact":
                    self.fail(f"{want}: node says {verdict}, refused: {e}")
                inexact += 1
            else:
                if verdict != "exact" or back != value:
                    self.fail(f"{want}: node says {verdict}, read {back!r}")
            rows += 1
        self.assertEqual(rows, 1_000_000)
        self.assertGreater(inexact, 1000)


class IJson(unittest.TestCase):
    def test_duplicates_refused(self) -> None:
        with self.assertRaisesRegex(jcs.JsonError, "duplicate member name `decision`"):
            jcs.loads(b'{"decision":"deny","decision":"allow"}')
        with self.assertRaises(jcs.JsonError):
            jcs.loads(b'{"a":{"x":1,"x":1}}')

    def test_integer_texts_no_double_holds_are_refused_and_nothing_else(self) -> None:
        for text in [b'{"seq":9007199254740993}', b'{"a":[1,-9007199254740993]}',
                     b'{"x":18446744073709551617}', b'{"x":295147905179352830000}']:
            with self.subTest(text=text):
                with self.assertRaisesRegex(jcs.JsonError, "no double holds exactly"):
                    jcs.loads(text)
        self.assertEqual(jcs.loads(b'{"n":9007199254740991}'), {"n": 9007199254740991})
        self.assertEqual(jcs.loads(b"[0.1,1e15,-0]"), [0.1, 1e15, 0])
        for text, value in [(b"9007199254740992", 2.0**53), (b"1e+21", 1e21), (b"1e21", 1e21),
                            (b"1e20", 1e20), (b"100000000000000000000", 1e20),
                            (b"18446744073709551616", 2.0**64), (b"9007199254740993.0", 2.0**53),
                            (b"1e16", 1e16)]:
            with self.subTest(text=text):
                self.assertEqual(jcs.loads(text), value)

    def test_hostile_inputs(self) -> None:
        for text in [b"\xff\xfe", b'{"a":"\xc3\x28"}', b'"\\ud800"', b"1e999", b"NaN",
                     b"{} {}", b"", b"[" * 100_000, b'{"\\udc00":1}']:
            with self.subTest(text=text[:20]):
                with self.assertRaises(jcs.JsonError):
                    jcs.loads(text)


class Jsonl(unittest.TestCase):
    def test_splits_on_newline_only(self) -> None:
        data = '{"a":"x\u2028y\u2029z\x85"}\r\n\n{"b":"\x85\u2029"}\n'
        got = list(iter_jsonl(data))
        self.assertEqual(got, [(1, {"a": "x\u2028y\u2029z\x85"}), (3, {"b": "\x85\u2029"})])

    def test_names_the_bad_line(self) -> None:
        with self.assertRaisesRegex(jcs.JsonError, "line 2"):
            list(iter_jsonl(b'{"a":1}\n{"a":1,"a":2}\n'))


def _hashed(record: dict) -> bytes:
    return jcs.canonicalize({k: v for k, v in record.items()
                             if k not in ("current_hash", "kms_signature", "daal")})


class V1Fixtures(unittest.TestCase):
    def _records(self, name: str) -> list:
        with open(os.path.join(V1, name), "rb") as f:
            return [v for _, v in iter_jsonl(f.read(), exact_numbers=False)]

    def test_valid_records_hash_to_their_current_hash(self) -> None:
        records = self._records("valid.jsonl")
        self.assertGreater(len(records), 3)
        for r in records:
            self.assertEqual(hashlib.sha256(_hashed(r)).hexdigest(), r["current_hash"])

    def test_edited_context_does_not_recompute(self) -> None:
        records = self._records("edited-context.jsonl")
        self.assertNotEqual(hashlib.sha256(_hashed(records[3])).hexdigest(), records[3]["current_hash"])

    def test_number_past_2_53_is_refused(self) -> None:
        with open(os.path.join(V1, "number-past-2-53.jsonl"), "rb") as f:
            with self.assertRaisesRegex(jcs.JsonError, "line 2"):
                list(iter_jsonl(f.read()))


if __name__ == "__main__":
    unittest.main()
