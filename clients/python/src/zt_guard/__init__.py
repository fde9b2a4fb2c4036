"""zt_guard: the Python guarded client of the zt-audit control plane.

An agent asks the control plane (``POST /actions``) whether it may run an action; the action
runs only after an ``allow`` whose v1 envelope verifies against the pinned key. Anything else
is a typed :class:`Refusal` and the action does not run.
"""

from .client import Agent, Allowed, Executed, GuardedClient, guarded
from . import errors
from .errors import *  # noqa: F403  (the typed refusals: errors.__all__ names them)
from .jcs import canonicalize
from .jsonl import iter_jsonl
from .keys import PinnedKey
from .verify import VerifiedDecision, verify_answer, verify_sealed

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Allowed",
    "Executed",
    "GuardedClient",
    "PinnedKey",
    "VerifiedDecision",
    "canonicalize",
    "guarded",
    "iter_jsonl",
    "verify_answer",
    "verify_sealed",
]
__all__ += errors.__all__
