"""Guards for tools of the official Python MCP SDK (``mcp`` on PyPI).

Works with ``mcp.server.mcpserver.MCPServer`` (mcp 2.x) and ``mcp.server.fastmcp.FastMCP``
(mcp 1.x): both register tools with ``@server.tool()`` / ``server.add_tool(fn)`` and read the
function's signature, which the guard keeps (``functools.wraps``).

A refused call raises the SDK's ``ToolError`` before the tool body runs, so the MCP client
gets a ``CallToolResult`` with ``is_error=True`` whose text names the refusal kind; the tool
body never runs.

Two ways to use it::

    @server.tool()
    @guard_mcp_tool(client, actor="agent-ops", action="fs.read", resource="files/notes")
    def read_notes() -> str: ...

    guard_mcp_server(server, client, actor="agent-ops")   # before registering tools:
    @server.tool()                                        # every tool added afterwards asks
    def anything(...) -> ...: ...                         # for action "mcp.tool.<name>"
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar, cast

from .client import GuardedClient
from .errors import Refusal

__all__ = ["GuardRefused", "guard_mcp_server", "guard_mcp_tool"]

try:  # mcp 2.x
    from mcp.server.mcpserver.exceptions import ToolError as _ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp.exceptions import (  # type: ignore[no-redef, import-not-found, unused-ignore]
        ToolError as _ToolError,
    )

F = TypeVar("F", bound=Callable[..., Any])


class GuardRefused(_ToolError):
    """The control plane's answer did not verify as an allow; ``refusal`` says why."""

    def __init__(self, tool: str, refusal: Refusal) -> None:
        super().__init__(f"zt-guard refused tool {tool}: {refusal.kind}: {refusal}")
        self.refusal = refusal


def _resolve(value: Any, kwargs: dict[str, Any]) -> Any:
    return value(**kwargs) if callable(value) else value


def _mcp_context(tool: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The request's context with what the MCP call was (``mcp``: method and tool), so the
    control plane's records and exported logs name it (``mcp.method.name``,
    ``gen_ai.tool.name``). A ``mcp`` member the caller gave is kept as it is."""
    ctx: dict[str, Any] = dict(given or {})
    ctx.setdefault("mcp", {"method": "tools/call", "tool": tool})
    return ctx


def guard_mcp_tool(
    client: GuardedClient,
    actor: str,
    *,
    action: str | None = None,
    resource: str | Callable[..., str] = "",
    context: Mapping[str, Any] | Callable[..., Mapping[str, Any] | None] | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Decorator for an MCP tool function (place it *under* ``@server.tool()``).

    ``action`` defaults to ``mcp.tool.<function name>``; ``resource`` and ``context`` may be
    callables given the tool's keyword arguments (MCP calls tools with keywords).
    """

    def decorate(fn: F) -> F:
        tool = name or fn.__name__
        act = action or f"mcp.tool.{tool}"

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_tool(*args: Any, **kwargs: Any) -> Any:
                try:
                    allowed = await client.decide_async(
                        actor, act, _resolve(resource, kwargs), _mcp_context(tool, _resolve(context, kwargs))
                    )
                    done = await allowed.run_async(fn, *args, **kwargs)
                except Refusal as r:
                    raise GuardRefused(tool, r) from r
                return done.result

            return cast(F, async_tool)

        @functools.wraps(fn)
        def sync_tool(*args: Any, **kwargs: Any) -> Any:
            # MCP servers run sync tools on a worker thread: blocking here is fine.
            try:
                allowed = client.decide(
                    actor, act, _resolve(resource, kwargs), _mcp_context(tool, _resolve(context, kwargs))
                )
                # The refusal of a second use is a Refusal too; the body's own exceptions
                # propagate as they are.
                decision_run = allowed.run
            except Refusal as r:
                raise GuardRefused(tool, r) from r
            try:
                return decision_run(fn, *args, **kwargs).result
            except Refusal as r:
                raise GuardRefused(tool, r) from r

        return cast(F, sync_tool)

    return decorate


def guard_mcp_server(
    server: Any,
    client: GuardedClient,
    actor: str,
    *,
    action_prefix: str = "mcp.tool.",
    resource: str | Callable[..., str] = "",
    context: Mapping[str, Any] | Callable[..., Mapping[str, Any] | None] | None = None,
) -> Any:
    """Guards every tool added to ``server`` (an ``MCPServer`` or ``FastMCP``) from now on:
    ``server.add_tool`` (which ``@server.tool()`` calls) wraps each function with
    :func:`guard_mcp_tool`, action ``<action_prefix><tool name>``. Call it before the tools
    are registered; the server is returned."""
    if getattr(server, "_zt_guarded", False):
        raise ValueError("this server is guarded already")
    original = server.add_tool

    @functools.wraps(original)
    def add_tool(fn: Callable[..., Any], name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        tool = name or fn.__name__
        wrapped = guard_mcp_tool(
            client,
            actor,
            action=f"{action_prefix}{tool}",
            resource=resource,
            context=context,
            name=tool,
        )(fn)
        return original(wrapped, name, *args, **kwargs)

    server.add_tool = add_tool
    server._zt_guarded = True
    return server
