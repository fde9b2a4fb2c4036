"""Why an action did not run. Every :class:`Refusal` means the same thing for the caller's
action: it was not executed. ``refusal.kind`` is a short stable name for logs and metrics,
the same names as the Rust client's ``Refusal::kind``."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadSignature",
    "ConnectError",
    "ContextMismatch",
    "Denied",
    "HashMismatch",
    "HttpError",
    "InvalidRequest",
    "KeyNotValid",
    "KeyringError",
    "Malformed",
    "Mismatch",
    "MissingAudit",
    "Refusal",
    "Replay",
    "Stale",
    "Timeout",
    "UnauthorizedSigner",
    "WrongKey",
]


class KeyringError(ValueError):
    """The pinned keyring cannot be used (set-up error: nothing was asked yet)."""


class Refusal(Exception):
    """The typed reason an action was refused. Subclasses set :attr:`kind`."""

    kind: ClassVar[str] = "refusal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Denied(Refusal):
    """The control plane denied it, in an envelope that verifies."""

    kind = "denied"

    def __init__(self, reason: str, status: int, current_hash: str) -> None:
        super().__init__(f"denied by the control plane: {reason}")
        self.reason = reason
        self.status = status
        self.current_hash = current_hash


class Timeout(Refusal):
    """No answer within the timeout."""

    kind = "timeout"

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the control plane did not answer within {int(timeout_s * 1000)} ms")
        self.timeout_s = timeout_s


class ConnectError(Refusal):
    """The connection failed (refused, reset, DNS, TLS)."""

    kind = "connect"

    def __init__(self, detail: str) -> None:
        super().__init__(f"cannot reach the control plane: {detail}")


class HttpError(Refusal):
    """An HTTP status without a verifiable decision (a 5xx, a 400 for a bad request, ...)."""

    kind = "http"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the control plane answered HTTP {status} without a decision: {detail}")
        self.status = status


class Malformed(Refusal):
    """Not JSON, not an envelope, too large, or inconsistent."""

    kind = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed answer: {detail}")


class MissingAudit(Refusal):
    """A 200 without the ``audit`` member: an allow nobody can check."""

    kind = "missing_audit"

    def __init__(self) -> None:
        super().__init__("the answer carries no audit envelope")


class HashMismatch(Refusal):
    """The envelope's hash does not recompute: it was edited."""

    kind = "hash_mismatch"

    def __init__(self, claimed: str, computed: str) -> None:
        super().__init__(
            f"the envelope's hash does not recompute (claimed {claimed}, computed {computed})"
        )
        self.claimed = claimed
        self.computed = computed


class UnauthorizedSigner(Refusal):
    """Signed by the pinned key, for a chain its keyring entry does not bind it to."""

    kind = "unauthorized_signer"

    def __init__(self, key_id: str, chain_id: str, chains: tuple[str, ...]) -> None:
        super().__init__(
            f"the envelope is of chain {chain_id!r}, but the pinned key {key_id} signs only "
            f"{', '.join(chains)}"
        )
        self.key_id = key_id
        self.chain_id = chain_id
        self.chains = chains


class WrongKey(Refusal):
    """Signed by some key other than the pinned one, or not signed at all."""

    kind = "wrong_key"

    def __init__(self, pinned: str, found: str, algorithm: str) -> None:
        super().__init__(
            f"the envelope is signed by {found!r} with {algorithm!r}, not by the pinned key {pinned}"
        )
        self.pinned = pinned
        self.found = found
        self.algorithm = algorithm


class BadSignature(Refusal):
    """The signature does not verify under the pinned key."""

    kind = "bad_signature"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"the envelope's signature does not verify under the pinned key {key_id}")
        self.key_id = key_id


class KeyNotValid(Refusal):
    """Signed by the pinned key at a time outside its window, or the key has been withdrawn
    (expired or revoked) since."""

    kind = "key_not_valid"

    def __init__(self, key_id: str, at: str, violation: str) -> None:
        super().__init__(f"the pinned key {key_id} is not valid at {at}: {violation}")
        self.key_id = key_id
        self.at = at
        self.violation = violation


class Mismatch(Refusal):
    """The decision is about another actor, action or resource."""

    kind = "mismatch"

    def __init__(self, field: str, asked: str, answered: str) -> None:
        super().__init__(
            f"the decision is for {field} {answered!r}, but the request was for {asked!r}"
        )
        self.field = field
        self.asked = asked
        self.answered = answered


class ContextMismatch(Refusal):
    """The envelope's ``context.request`` is not the request's ``context`` (RFC 8785 form)."""

    kind = "context_mismatch"

    def __init__(self, asked: str | None, answered: str | None) -> None:
        super().__init__(
            f"the decision was made on the context {answered or '(none)'}, "
            f"but the request sent {asked or '(none)'}"
        )
        self.asked = asked
        self.answered = answered


class Stale(Refusal):
    """The envelope's timestamp is too far from the local clock."""

    kind = "stale"

    def __init__(self, timestamp: str, skew_ms: int, max_ms: int) -> None:
        super().__init__(
            f"the decision's timestamp {timestamp} is {skew_ms} ms from now (at most {max_ms} allowed)"
        )
        self.timestamp = timestamp
        self.skew_ms = skew_ms
        self.max_ms = max_ms


class Replay(Refusal):
    """An envelope this client accepted before, or one answering another request."""

    kind = "replay"

    def __init__(self, detail: str) -> None:
        super().__init__(f"replayed decision: {detail}")


class InvalidRequest(Refusal):
    """The request cannot be sent as asked (a context that is not a JSON object of JSON
    values, say). Nothing was sent; nothing runs."""

    kind = "invalid_request"

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid request: {detail}")
