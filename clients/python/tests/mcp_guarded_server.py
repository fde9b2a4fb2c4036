"""A guarded MCP server (stdio) for the end-to-end test. Two tools, each creating a marker
file in ZT_TEST_MARKER_DIR when its body runs; the control plane's policy allows one.

ZT_TEST_MODE=decorator guards each tool with @guard_mcp_tool; ZT_TEST_MODE=server guards
every tool of the server with guard_mcp_server."""

from __future__ import annotations

import os

import _paths  # noqa: F401
from mcp.server.mcpserver import MCPServer

from zt_guard import GuardedClient, PinnedKey
from zt_guard.mcp_guard import guard_mcp_server, guard_mcp_tool

ACTOR = os.environ["ZT_TEST_ACTOR"]
MARKERS = os.environ["ZT_TEST_MARKER_DIR"]
MODE = os.environ.get("ZT_TEST_MODE", "decorator")

with open(os.environ["ZT_TEST_KEYRING"], "rb") as f:
    client = GuardedClient(os.environ["ZT_TEST_CP_URL"], PinnedKey.from_keyring_json(f.read()))

server: MCPServer = MCPServer("zt-guarded-test")


def mark(name: str, text: str) -> None:
    with open(os.path.join(MARKERS, name), "w") as f:
        f.write(text)


if MODE == "server":
    guard_mcp_server(server, client, ACTOR, resource=lambda **kw: f"notes/{kw.get('note', '')}")

    @server.tool()
    def read_note(note: str) -> str:
        """Reads a note (allowed by the policy)."""
        mark("read_note.ran", note)
        return f"the note {note} says hello"

    @server.tool()
    async def delete_note(note: str) -> str:
        """Deletes a note (denied by the policy)."""
        mark("delete_note.ran", note)
        return f"deleted {note}"

else:

    @server.tool()
    @guard_mcp_tool(client, ACTOR, action="notes.read", resource=lambda note: f"notes/{note}")
    def read_note(note: str) -> str:
        """Reads a note (allowed by the policy)."""
        mark("read_note.ran", note)
        return f"the note {note} says hello"

    @server.tool()
    @guard_mcp_tool(client, ACTOR, action="notes.delete", resource=lambda note: f"notes/{note}")
    async def delete_note(note: str) -> str:
        """Deletes a note (denied by the policy)."""
        mark("delete_note.ran", note)
        return f"deleted {note}"


if __name__ == "__main__":
    server.run("stdio")
