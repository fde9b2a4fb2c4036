"""End to end: a guarded MCP server (stdio) called by a real MCP client; the control plane's
policy allows one tool and denies the other; both decisions are in its store and verify."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import os
import shutil
import sys
import tempfile
import unittest
from typing import Any

import _paths
from cp_harness import ControlPlane

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError:  # pragma: no cover - the pinned test venv has it
    ClientSession = None  # type: ignore[assignment,misc]

ACTOR = "agent-mcp"
SERVER = os.path.join(_paths.HERE, "mcp_guarded_server.py")


@unittest.skipIf(ClientSession is None, "the mcp package is not installed (see requirements-test.txt)")
class GuardedMcpServer(unittest.TestCase):
    def run_case(self, mode: str, allow: tuple[str, str]) -> None:
        cp = ControlPlane()
        markers = tempfile.mkdtemp(prefix="zt-guard-mcp-")
        try:
            cp.register(ACTOR)
            cp.allow(ACTOR, *allow)
            env = {
                "ZT_TEST_ACTOR": ACTOR,
                "ZT_TEST_MARKER_DIR": markers,
                "ZT_TEST_MODE": mode,
                "ZT_TEST_KEYRING": cp.keyring_path,
                "ZT_TEST_CP_URL": cp.url,
                "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            }
            params = StdioServerParameters(command=sys.executable, args=[SERVER], env=env)

            async def session() -> tuple[Any, Any, list[str]]:
                with open(os.path.join(markers, "server-stderr.txt"), "w") as errlog:
                    async with stdio_client(params, errlog=errlog) as (read, write):
                        async with ClientSession(read, write) as s:
                            await s.initialize()
                            names = sorted(t.name for t in (await s.list_tools()).tools)
                            allowed = await s.call_tool("read_note", {"note": "public"})
                            denied = await s.call_tool("delete_note", {"note": "public"})
                            return allowed, denied, names

            allowed, denied, names = asyncio.run(asyncio.wait_for(session(), 60))
            self.assertEqual(names, ["delete_note", "read_note"])
            self.assertFalse(allowed.is_error, allowed)
            self.assertIn("the note public says hello", allowed.content[0].text)
            self.assertTrue(os.path.exists(os.path.join(markers, "read_note.ran")))
            self.assertTrue(denied.is_error, denied)
            self.assertIn("zt-guard refused tool delete_note: denied", denied.content[0].text)
            self.assertFalse(os.path.exists(os.path.join(markers, "delete_note.ran")),
                             "the denied tool's body ran")
        finally:
            cp.stop()
            shutil.rmtree(markers, ignore_errors=True)
        # both decisions are in the store, and the store verifies
        result = cp.verify_store()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("2 records", result.stdout)  # allow + deny on the decision chain
        # each record names the MCP call it decided (what exported logs carry as mcp.method.name)
        with sqlite3.connect(cp.db_path) as db:
            raws = [r[0] for r in db.execute("SELECT raw FROM records ORDER BY id")]
        calls = sorted(
            (rec["context"]["request"]["mcp"]["method"], rec["context"]["request"]["mcp"]["tool"])
            for rec in (json.loads(bytes(r).decode("utf-8")) for r in raws)
            if rec.get("chain_id", "").endswith(".admin") is False
        )
        self.assertEqual(calls, [("tools/call", "delete_note"), ("tools/call", "read_note")])
        cp.cleanup()

    def test_tool_decorator(self) -> None:
        self.run_case("decorator", ("notes.read", "notes/public"))

    def test_whole_server(self) -> None:
        self.run_case("server", ("mcp.tool.read_note", "notes/public"))


if __name__ == "__main__":
    unittest.main()
