"""The guarded client: ask the control plane, run the action only on a verified allow."""

from __future__ import annotations

import asyncio
import functools
import http.client
import inspect
import os
import secrets
import ssl
import threading
import time
import urllib.parse
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Mapping, TypeVar, cast

from . import jcs
from .errors import ConnectError, Denied, InvalidRequest, Malformed, Replay, Timeout
from .keys import PinnedKey, now_ns
from .verify import MAX_ANSWER, VerifiedDecision, verify_answer

__all__ = ["Allowed", "Executed", "GuardedClient", "guarded"]

T = TypeVar("T")

# The sentinel only this module holds: `Allowed(...)` without it is a TypeError. Python cannot
# make a class truly unconstructible (object.__new__ and attribute writes exist), so
# `Allowed.run` also checks the instance against the registry of allows minted here.
_MINT = object()
_minted: "weakref.WeakSet[Allowed]" = weakref.WeakSet()
_minted_lock = threading.Lock()

SEEN_CAP = 100_000


class Allowed:
    """A verified ``allow``. Only :meth:`GuardedClient.decide` makes one; only it runs an action.

    Construction needs a private sentinel (``Allowed(...)`` from outside raises ``TypeError``),
    subclassing is refused, and :meth:`run` accepts only instances this module minted, once.
    """

    __slots__ = ("_decision", "_used", "_lock", "__weakref__")

    def __init__(self, decision: VerifiedDecision, *, _mint: object = None) -> None:
        if _mint is not _MINT:
            raise TypeError("an Allowed comes only out of GuardedClient.decide (verification)")
        if decision.decision != "allow" or decision.status != 200:
            raise TypeError("an Allowed needs a verified allow")
        self._decision = decision
        self._used = False
        self._lock = threading.Lock()
        with _minted_lock:
            _minted.add(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Allowed cannot be subclassed")

    def __reduce__(self) -> Any:
        raise TypeError("an Allowed cannot be pickled or copied")

    def __copy__(self) -> "Allowed":
        raise TypeError("an Allowed cannot be copied")

    def __deepcopy__(self, memo: Any) -> "Allowed":
        raise TypeError("an Allowed cannot be copied")

    @property
    def decision(self) -> VerifiedDecision:
        """The verified decision behind this allow."""
        return self._decision

    def _consume(self) -> VerifiedDecision:
        with _minted_lock:
            genuine = type(self) is Allowed and self in _minted
        if not genuine:
            raise Replay("this Allowed was not made by verification")
        with self._lock:
            if self._used:
                raise Replay(f"the allow {self._decision.current_hash[:16]} was used already")
            self._used = True
        return self._decision

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Executed[T]":
        """Runs ``fn(*args, **kwargs)`` under this allow (once)."""
        decision = self._consume()
        return Executed(fn(*args, **kwargs), decision)

    async def run_async(
        self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> "Executed[T]":
        """Awaits ``fn(*args, **kwargs)`` under this allow (once)."""
        decision = self._consume()
        return Executed(await fn(*args, **kwargs), decision)

    def __repr__(self) -> str:
        d = self._decision
        return f"Allowed(chain={d.chain_id!r}, seq={d.seq}, current_hash={d.current_hash[:16]}…)"


@dataclass(frozen=True)
class Executed(Generic[T]):
    """An action that ran, and the decision it ran under."""

    result: T
    decision: VerifiedDecision


def _check_context(context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if context is None:
        return None
    if not isinstance(context, Mapping):
        raise InvalidRequest("context must be a JSON object (a mapping)")
    ctx = dict(context)
    try:
        text = jcs.canonicalize(ctx)
        # Round trip under the I-JSON rules the control plane and the verifier apply.
        jcs.loads(text)
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"context is not an I-JSON object: {e}") from None
    return ctx


def _ordered_object(members: list[tuple[str, Any]]) -> bytes:
    return (
        "{"
        + ",".join(
            jcs.canonicalize(k).decode("utf-8") + ":" + jcs.canonicalize(v).decode("utf-8")
            for k, v in members
        )
        + "}"
    ).encode("utf-8")


class GuardedClient:
    """Asks ``POST {base_url}/actions`` and verifies the answer against the pinned key.

    :param base_url: the control plane, e.g. ``http://127.0.0.1:8080`` (``https://`` for TLS).
    :param pinned: the key every decision must be signed with (see :class:`PinnedKey`).
    :param token: this agent's bearer token (from ``POST /agents``); ``None`` in open mode.
    :param timeout: seconds for the whole exchange (connect, send, answer).
    :param max_skew: largest distance in seconds between a decision's timestamp and the clock.
    :param ca: for ``https://``: a PEM file of CAs to trust (default: the system's).
    :param cert: for mTLS: this agent's certificate (PEM); ``key`` its private key.

    There is no option that skips verification. Redirects are never followed.
    """

    def __init__(
        self,
        base_url: str,
        pinned: PinnedKey,
        token: str | None = None,
        timeout: float = 5.0,
        max_skew: float = 30.0,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(pinned, PinnedKey):
            raise TypeError("pinned must be a PinnedKey")
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be http:// or https:// with a host: {base_url!r}")
        if url.query or url.fragment:
            raise ValueError("base_url must not carry a query or a fragment")
        if timeout <= 0 or max_skew < 0:
            raise ValueError("timeout must be > 0 and max_skew >= 0")
        if key is not None and cert is None:
            raise ValueError("a client key needs its certificate (cert=)")
        self._url = url
        self._path = url.path.rstrip("/") + "/actions"
        self.pinned = pinned
        self._token = token
        self.timeout = float(timeout)
        self.max_skew = float(max_skew)
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            ctx = ssl.create_default_context(cafile=os.fspath(ca) if ca is not None else None)
            if cert is not None:
                ctx.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
            self._ssl = ctx
        elif ca is not None or cert is not None:
            raise ValueError("ca/cert options need an https:// base_url")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the token
        return (
            f"GuardedClient({urllib.parse.urlunsplit(self._url)!r}, key_id={self.pinned.key_id!r}, "
            f"token={'set' if self._token else 'none'})"
        )

    # -- the exchange ------------------------------------------------------------------------

    def _exchange(self, body: bytes) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        host = self._url.hostname or ""
        port = self._url.port
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            return left

        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(remaining())
            conn.request("POST", self._path, body=body, headers=headers)
            conn.sock.settimeout(remaining())
            resp = conn.getresponse()
            status = resp.status
            buf = bytearray()
            while True:
                if conn.sock is not None:
                    conn.sock.settimeout(remaining())
                chunk = resp.read1(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_ANSWER:
                    raise Malformed(f"answer larger than {MAX_ANSWER} bytes")
            return status, bytes(buf)
        except TimeoutError:
            raise Timeout(self.timeout) from None
        except (OSError, http.client.HTTPException) as e:
            raise ConnectError(f"{type(e).__name__}: {e}") from None
        finally:
            conn.close()

    # -- deciding ----------------------------------------------------------------------------

    def decide(
        self,
        actor: str,
        action: str,
        resource: str = "",
        context: Mapping[str, Any] | None = None,
    ) -> Allowed:
        """Asks and verifies; an :class:`Allowed` only for a verified allow, else a typed
        :class:`~zt_guard.errors.Refusal` (a verified deny is :class:`~zt_guard.errors.Denied`)."""
        if not isinstance(actor, str) or not isinstance(action, str) or not isinstance(resource, str):
            raise InvalidRequest("actor, action and resource must be strings")
        ctx = _check_context(context)
        request_id = "req-" + secrets.token_hex(12)
        members: list[tuple[str, Any]] = [
            ("actor", actor),
            ("action", action),
            ("resource", resource),
            ("request_id", request_id),
        ]
        if ctx is not None:
            members.append(("context", ctx))
        try:
            body = _ordered_object(members)
        except (TypeError, ValueError) as e:
            raise InvalidRequest(str(e)) from None
        status, answer = self._exchange(body)
        decision = verify_answer(
            status,
            answer,
            actor=actor,
            action=action,
            resource=resource,
            context=ctx,
            request_id=request_id,
            pinned=self.pinned,
            now=now_ns(),
            max_skew=self.max_skew,
        )
        with self._seen_lock:
            if decision.current_hash in self._seen:
                raise Replay(f"envelope {decision.current_hash[:16]} was already accepted once")
            self._seen[decision.current_hash] = None
            if len(self._seen) > SEEN_CAP:
                self._seen.popitem(last=False)
        if decision.decision != "allow":
            raise Denied(decision.reason, decision.status, decision.current_hash)
        return Allowed(decision, _mint=_MINT)

    async def decide_async(
        self,
        actor: str,
        action: str,
        resource: str = "",
        context: Mapping[str, Any] | None = None,
    ) -> Allowed:
        """:meth:`decide` on a worker thread, for event loops."""
        return await asyncio.to_thread(self.decide, actor, action, resource, context)

    def guarded_call(
        self,
        actor: str,
        action: str,
        resource: str,
        fn: Callable[..., T],
        *args: Any,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Executed[T]:
        """Asks, then runs ``fn(*args, **kwargs)`` only on a verified allow; its result and the
        decision back. Any refusal is raised and ``fn`` is not called."""
        allowed = self.decide(actor, action, resource, context)
        return allowed.run(fn, *args, **kwargs)

    def agent(self, actor: str) -> "Agent":
        """This client speaking for ``actor``: ``client.agent(a).guarded_call(action, resource,
        fn)``."""
        return Agent(self, actor)

    async def guarded_call_async(
        self,
        actor: str,
        action: str,
        resource: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Executed[T]:
        """:meth:`guarded_call` for a coroutine function."""
        allowed = await self.decide_async(actor, action, resource, context)
        return await allowed.run_async(fn, *args, **kwargs)


class Agent:
    """A client speaking for one agent: ``agent.guarded_call(action, resource, fn)``."""

    def __init__(self, client: GuardedClient, actor: str) -> None:
        self.client = client
        self.actor = actor

    def __repr__(self) -> str:
        return f"Agent({self.actor!r}, {self.client!r})"

    def decide(
        self, action: str, resource: str = "", context: Mapping[str, Any] | None = None
    ) -> Allowed:
        """:meth:`GuardedClient.decide` as this agent."""
        return self.client.decide(self.actor, action, resource, context)

    def guarded_call(
        self,
        action: str,
        resource: str,
        fn: Callable[..., T],
        *args: Any,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Executed[T]:
        """Runs ``fn(*args, **kwargs)`` only on a verified allow of ``action`` on ``resource``
        for this agent; any refusal is raised and ``fn`` is not called."""
        return self.client.guarded_call(
            self.actor, action, resource, fn, *args, context=context, **kwargs
        )

    async def guarded_call_async(
        self,
        action: str,
        resource: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Executed[T]:
        """:meth:`guarded_call` for a coroutine function."""
        return await self.client.guarded_call_async(
            self.actor, action, resource, fn, *args, context=context, **kwargs
        )


F = TypeVar("F", bound=Callable[..., Any])

def _resolve(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def guarded(
    client: GuardedClient,
    *,
    actor: str,
    action: str,
    resource: str | Callable[..., str] = "",
    context: Mapping[str, Any] | Callable[..., Mapping[str, Any] | None] | None = None,
) -> Callable[[F], F]:
    """Decorator: every call of the function first asks ``client``; the body runs only on a
    verified allow, and returns what the body returns. A refusal is raised (typed).

    ``resource`` and ``context`` may be callables given the call's own arguments, for a
    decision about what this call touches. Coroutine functions are supported (the question
    is asked on a worker thread). The signature is kept (``functools.wraps``).
    """

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                res = _resolve(resource, args, kwargs)
                ctx = _resolve(context, args, kwargs)
                allowed = await client.decide_async(actor, action, res, ctx)
                done = await allowed.run_async(fn, *args, **kwargs)
                return done.result

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            res = _resolve(resource, args, kwargs)
            ctx = _resolve(context, args, kwargs)
            return client.guarded_call(actor, action, res, fn, *args, context=ctx, **kwargs).result

        return cast(F, wrapper)

    return decorate
