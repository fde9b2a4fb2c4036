"""Starts the real control plane binary (env ZT_AUDIT_BIN, default /work/zt-audit-py) on
127.0.0.1 in a temp dir, in open mode, and stops it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.request
from typing import Any

BIN = os.environ.get("ZT_AUDIT_BIN", "/work/zt-audit-py")


class ControlPlane:
    def __init__(self, open_mode: bool = True) -> None:
        self.tmp = tempfile.mkdtemp(prefix="zt-guard-cp-")
        self.dir = os.path.join(self.tmp, "cp")
        args = [BIN, "control-plane", "--dir", self.dir, "--listen", "127.0.0.1:0"]
        if open_mode:
            args.append("--open")
        self.stderr_path = os.path.join(self.tmp, "stderr.txt")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().decode("utf-8", "replace").strip()
        if "listening on " not in first:
            self.stop()
            raise RuntimeError(f"control plane did not start: {first!r}; see {self.stderr_path}")
        self.url = first.rsplit(" ", 1)[-1]
        # keep draining stdout so the server never blocks on a full pipe
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()
        self.keyring_path = os.path.join(self.dir, "keyring.json")
        self.db_path = os.path.join(self.dir, "decisions.db")
        self.admin_token: str | None = None
        if not open_mode:
            with open(os.path.join(self.dir, "admin-token")) as f:
                self.admin_token = f.read().strip()

    def keyring(self) -> bytes:
        with open(self.keyring_path, "rb") as f:
            return f.read()

    def admin(self, method: str, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.admin_token:
            req.add_header("Authorization", f"Bearer {self.admin_token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def register(self, actor: str) -> str:
        return str(self.admin("POST", "/agents", {"actor": actor})["token"])

    def allow(self, actor: str, action: str, resource: str | None = None) -> None:
        rule: dict[str, str] = {"action": action, "actor": actor}
        if resource is not None:
            rule["resource"] = resource
        self.admin("POST", "/policies", rule)

    def verify_store(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN, "verify", "--db", self.db_path, "--keyring", self.keyring_path],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
