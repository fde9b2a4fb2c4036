"""Against the real control plane binary (ZT_AUDIT_BIN): the action runs only on a verified
allow, and every refusal the client can meet leaves it unrun."""

from __future__ import annotations

import json
import socket
import unittest
from typing import Any
from unittest import mock

import _paths  # noqa: F401
import sealing
from cp_harness import ControlPlane
from proxy import Proxy
from zt_guard import (
    BadSignature, ConnectError, Denied, GuardedClient, HashMismatch, HttpError, Malformed,
    Mismatch, MissingAudit, PinnedKey, Refusal, Replay, Timeout, WrongKey, guarded,
)

ACTOR = "agent-py"


class Action:
    """Records whether it ran."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return "done"


class AgainstTheControlPlane(unittest.TestCase):
    cp: ControlPlane

    @classmethod
    def setUpClass(cls) -> None:
        cls.cp = ControlPlane()
        cls.cp.register(ACTOR)
        cls.cp.register("agent-other")
        cls.cp.allow(ACTOR, "files.read", "files/a")
        cls.cp.allow(ACTOR, "files.read", "files/b")
        cls.pinned = PinnedKey.from_keyring_json(cls.cp.keyring())

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            result = cls.cp.verify_store()
            assert result.returncode == 0, result.stdout + result.stderr
        finally:
            cls.cp.cleanup()

    def client(self, url: str | None = None, **kw: Any) -> GuardedClient:
        return GuardedClient(url or self.cp.url, kw.pop("pinned", self.pinned), **kw)

    def refused(self, kind: type[Refusal], client: GuardedClient, action: str = "files.read",
                resource: str = "files/a", **kw: Any) -> Refusal:
        act = Action()
        with self.assertRaises(kind) as cm:
            client.guarded_call(ACTOR, action, resource, act, "x", **kw)
        self.assertEqual(act.calls, [], "the action ran despite a refusal")
        return cm.exception

    def test_allow_runs_the_action(self) -> None:
        act = Action()
        done = self.client().guarded_call(ACTOR, "files.read", "files/a", act, 1, key="v")
        self.assertEqual(done.result, "done")
        self.assertEqual(act.calls, [((1,), {"key": "v"})])
        self.assertEqual(done.decision.decision, "allow")
        self.assertEqual(len(done.decision.current_hash), 64)

    def test_deny_does_not(self) -> None:
        r = self.refused(Denied, self.client(), action="files.delete")
        self.assertEqual(r.kind, "denied")
        self.assertEqual(r.status, 403)
        self.refused(Denied, self.client(), resource="files/c")

    def test_an_agent_binding_asks_guarded_call_action_resource_fn(self) -> None:
        agent = self.client().agent(ACTOR)
        act = Action()
        done = agent.guarded_call("files.read", "files/a", act, 2)
        self.assertEqual((done.result, act.calls), ("done", [((2,), {})]))
        denied = Action()
        with self.assertRaises(Denied):
            agent.guarded_call("files.delete", "files/a", denied)
        self.assertEqual(denied.calls, [], "the action ran despite a deny")

    def test_decorator(self) -> None:
        client = self.client()
        ran: list[str] = []

        @guarded(client, actor=ACTOR, action="files.read", resource=lambda name: f"files/{name}")
        def read(name: str) -> str:
            ran.append(name)
            return f"contents of {name}"

        self.assertEqual(read("b"), "contents of b")
        with self.assertRaises(Denied):
            read("c")
        self.assertEqual(ran, ["b"])

    def test_context_is_sealed_and_compared(self) -> None:
        self.assertEqual(self.client().guarded_call(
            ACTOR, "files.read", "files/a", Action(), context={"ticket": "T-1", "n": 3}).result, "done")

    def test_wrong_pinned_key(self) -> None:
        other = sealing.pinned(sealing.new_key(), key_id=self.pinned.key_id)
        self.refused(BadSignature, self.client(pinned=other))
        self.refused(WrongKey, self.client(pinned=sealing.pinned(sealing.new_key(), key_id="cp-else")))

    def test_tampered_answers(self) -> None:
        def edit(fn: Any) -> Any:
            def on_answer(status: int, body: bytes) -> tuple[int, bytes]:
                doc = json.loads(body)
                fn(doc)
                return 200, json.dumps(doc).encode()
            return on_answer

        def ask_for(resource: str) -> Any:
            def on_request(body: bytes) -> bytes:
                doc = json.loads(body)
                doc["resource"] = resource
                return json.dumps(doc).encode()
            return on_request

        cases: list[tuple[str, str, Any, Any, type[Refusal]]] = [
            # a deny turned into an allow
            ("files.delete", "files/a", None, edit(lambda d: d.update(decision="allow")), HashMismatch),
            # the client asks for files/c (denied); an allow for files/a is shown as one for files/c
            ("files.read", "files/c", ask_for("files/a"),
             edit(lambda d: d.update(resource="files/c")), HashMismatch),
            ("files.read", "files/a", None,
             edit(lambda d: d["audit"]["kms_signature"].update(key_id="cp-else")), WrongKey),
            ("files.read", "files/a", None,
             edit(lambda d: d["audit"]["kms_signature"].update(signature=d["audit"]["kms_signature"]["signature"][:-8] + "AAAAAAA=")),
             BadSignature),
            ("files.read", "files/a", None, edit(lambda d: d.pop("audit")), MissingAudit),
            ("files.read", "files/a", None, edit(lambda d: d["audit"].pop("version")), Malformed),
        ]
        for action, resource, on_request, on_answer, kind in cases:
            with self.subTest(kind=kind.__name__, action=action):
                p = Proxy(self.cp.url, on_request=on_request, on_answer=on_answer)
                try:
                    self.refused(kind, self.client(p.url), action=action, resource=resource)
                finally:
                    p.close()

    def test_decision_for_another_resource(self) -> None:
        # The proxy asks about files/b (allowed) while the client asked about files/c.
        def swap(body: bytes) -> bytes:
            doc = json.loads(body)
            doc["resource"] = "files/b"
            return json.dumps(doc).encode()
        p = Proxy(self.cp.url, on_request=swap)
        try:
            r = self.refused(Mismatch, self.client(p.url), resource="files/c")
            self.assertEqual(r.field, "resource")
            self.assertEqual(json.loads(p.answers[0][1])["decision"], "allow")
        finally:
            p.close()

    def test_replayed_answers(self) -> None:
        # An earlier allow, answered again to a later request.
        p = Proxy(self.cp.url)
        try:
            self.client(p.url).guarded_call(ACTOR, "files.read", "files/a", Action())
            saved = p.answers[-1]
            p.fixed = lambda _body: saved
            self.refused(Replay, self.client(p.url))
        finally:
            p.close()
        # The same envelope twice to one client, even for the same request id.
        p = Proxy(self.cp.url)
        try:
            client = self.client(p.url)
            with mock.patch("zt_guard.client.secrets.token_hex", return_value="00" * 12):
                client.guarded_call(ACTOR, "files.read", "files/a", Action())
                saved = p.answers[-1]
                p.fixed = lambda _body: saved
                r = self.refused(Replay, client)
            self.assertIn("already accepted", str(r))
        finally:
            p.close()

    def test_transport_failures(self) -> None:
        p = Proxy(self.cp.url, stall_s=1.5)
        try:
            r = self.refused(Timeout, self.client(p.url, timeout=0.5))
            self.assertEqual(r.kind, "timeout")
        finally:
            p.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.refused(ConnectError, self.client(f"http://127.0.0.1:{port}"))
        for fixed, kind in [
            ((503, b'{"ok":false,"error":"writer queue full"}'), HttpError),
            ((200, b"not json"), Malformed),
            ((200, b'{"ok":true,"decision":"allow","actor":"agent-py"}'), MissingAudit),
            ((200, b"x" * (1 << 20 + 1)), Malformed),
        ]:
            p = Proxy(self.cp.url, fixed=lambda _b, f=fixed: f)
            try:
                with self.subTest(kind=kind.__name__, status=fixed[0]):
                    self.refused(kind, self.client(p.url))
            finally:
                p.close()


class WithTokens(unittest.TestCase):
    """A control plane that requires tokens: the agent's token binds it to its actor."""

    def test_tokens(self) -> None:
        cp = ControlPlane(open_mode=False)
        try:
            token = cp.register(ACTOR)
            other = cp.register("agent-other")
            cp.allow(ACTOR, "files.read", "files/a")
            pinned = PinnedKey.from_keyring_json(cp.keyring())
            act = Action()
            done = GuardedClient(cp.url, pinned, token=token).guarded_call(ACTOR, "files.read", "files/a", act)
            self.assertEqual((done.result, len(act.calls)), ("done", 1))
            for tok, status in ((other, 403), (None, 401), ("ztcp_wrong", 401)):
                with self.subTest(status=status):
                    with self.assertRaises(Denied) as cm:
                        GuardedClient(cp.url, pinned, token=tok).guarded_call(ACTOR, "files.read", "files/a", act)
                    self.assertEqual(cm.exception.status, status)
            self.assertEqual(len(act.calls), 1)
            self.assertNotIn(token, repr(GuardedClient(cp.url, pinned, token=token)))
            result = cp.verify_store()
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        finally:
            cp.cleanup()


if __name__ == "__main__":
    unittest.main()
