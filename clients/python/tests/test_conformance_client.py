"""The conformance hook against the real control plane: the marker exists only after a
verified allow; exit 0 either way, 2 on a usage error."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import _paths
import sealing
from cp_harness import ControlPlane
from proxy import Proxy

SCRIPT = os.path.join(_paths.HERE, "conformance_client.py")
ACTOR = "agent-conf"


class ConformanceClient(unittest.TestCase):
    cp: ControlPlane

    @classmethod
    def setUpClass(cls) -> None:
        cls.cp = ControlPlane()
        cls.cp.register(ACTOR)
        cls.cp.allow(ACTOR, "run", "res/ok")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.cp.cleanup()

    def run_case(self, url: str | None = None, keyring: str | None = None, **over: str) -> tuple[int, str, bool]:
        tmp = tempfile.mkdtemp(prefix="zt-guard-conf-")
        marker = os.path.join(tmp, "marker")
        env = dict(os.environ)
        env.update({
            "ZT_CONFORMANCE_URL": url or self.cp.url,
            "ZT_CONFORMANCE_KEYRING": keyring or self.cp.keyring_path,
            "ZT_CONFORMANCE_ACTOR": ACTOR,
            "ZT_CONFORMANCE_ACTION": "run",
            "ZT_CONFORMANCE_RESOURCE": "res/ok",
            "ZT_CONFORMANCE_TIMEOUT_MS": "2000",
            "ZT_CONFORMANCE_MARKER": marker,
        })
        env.update(over)
        for k, v in list(env.items()):
            if v == "<unset>":
                del env[k]
        p = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True, timeout=60)
        ran = os.path.exists(marker)
        if ran:
            os.remove(marker)
        os.rmdir(tmp)
        return p.returncode, p.stdout.strip(), ran

    def test_allow_creates_the_marker(self) -> None:
        code, out, ran = self.run_case()
        self.assertEqual((code, ran), (0, True), out)
        self.assertTrue(out.startswith("allowed: "), out)
        self.assertEqual(len(out.split("\n")), 1)

    def test_refusals_do_not(self) -> None:
        other_keyring = os.path.join(self.cp.tmp, "other-keyring.json")
        with open(other_keyring, "wb") as f:
            f.write(sealing.keyring_json(sealing.new_key(), "cp-other"))
        stall = Proxy(self.cp.url, stall_s=1.0)
        try:
            for over, kind in [
                ({"ZT_CONFORMANCE_RESOURCE": "res/no"}, "denied"),
                ({"ZT_CONFORMANCE_KEYRING": other_keyring}, "wrong_key"),
                ({"ZT_CONFORMANCE_URL": "http://127.0.0.1:9"}, "connect"),
                ({"ZT_CONFORMANCE_URL": stall.url, "ZT_CONFORMANCE_TIMEOUT_MS": "300"}, "timeout"),
            ]:
                with self.subTest(kind=kind):
                    code, out, ran = self.run_case(**over)
                    self.assertEqual((code, ran), (0, False), out)
                    self.assertTrue(out.startswith(f"refused: {kind}: "), out)
        finally:
            stall.close()

    def test_usage_errors(self) -> None:
        code, _, ran = self.run_case(ZT_CONFORMANCE_MARKER="<unset>")
        self.assertEqual((code, ran), (2, False))
        code, _, _ = self.run_case(ZT_CONFORMANCE_TIMEOUT_MS="soon")
        self.assertEqual(code, 2)
        code, _, _ = self.run_case(ZT_CONFORMANCE_KEYRING="/nonexistent/keyring.json")
        self.assertEqual(code, 2)


if __name__ == "__main__":
    unittest.main()
