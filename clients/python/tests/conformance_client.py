#!/usr/bin/env python3
"""Client conformance hook: the runner invokes this once per case.

Environment:
  ZT_CONFORMANCE_URL        the control plane base URL for this case (POST {URL}/actions)
  ZT_CONFORMANCE_KEYRING    path to keyring.json (one key)
  ZT_CONFORMANCE_ACTOR      who asks
  ZT_CONFORMANCE_ACTION     the action
  ZT_CONFORMANCE_RESOURCE   the resource (may be empty)
  ZT_CONFORMANCE_TIMEOUT_MS the client timeout in milliseconds
  ZT_CONFORMANCE_MARKER     a file path: "running the action" means creating this file

It asks with zt_guard and creates the marker only on a verified allow. It prints one line,
`allowed: <current_hash>` or `refused: <kind>: <message>`, and exits 0 either way (the runner
judges by the marker); 2 on a usage error (a missing variable, an unusable keyring).
"""

from __future__ import annotations

import os
import sys

try:
    import zt_guard  # noqa: F401
except ImportError:  # run from a checkout without `pip install ./clients/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from zt_guard import GuardedClient, KeyringError, PinnedKey, Refusal

REQUIRED = (
    "ZT_CONFORMANCE_URL",
    "ZT_CONFORMANCE_KEYRING",
    "ZT_CONFORMANCE_ACTOR",
    "ZT_CONFORMANCE_ACTION",
    "ZT_CONFORMANCE_TIMEOUT_MS",
    "ZT_CONFORMANCE_MARKER",
)


def usage(message: str) -> int:
    print(f"usage error: {message}", file=sys.stderr)
    print(__doc__, file=sys.stderr)
    return 2


def run_action(marker: str) -> None:
    # O_EXCL: the action is "creating the marker", once.
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("ran\n")


def main() -> int:
    missing = [name for name in REQUIRED if name not in os.environ]
    if missing:
        return usage("missing " + ", ".join(missing))
    env = os.environ
    try:
        timeout_ms = int(env["ZT_CONFORMANCE_TIMEOUT_MS"])
        if timeout_ms <= 0:
            raise ValueError
    except ValueError:
        return usage("ZT_CONFORMANCE_TIMEOUT_MS must be a positive integer")
    try:
        with open(env["ZT_CONFORMANCE_KEYRING"], "rb") as f:
            pinned = PinnedKey.from_keyring_json(f.read())
        client = GuardedClient(env["ZT_CONFORMANCE_URL"], pinned, timeout=timeout_ms / 1000.0)
    except (OSError, KeyringError, ValueError) as e:
        return usage(str(e))
    try:
        done = client.guarded_call(
            env["ZT_CONFORMANCE_ACTOR"],
            env["ZT_CONFORMANCE_ACTION"],
            env.get("ZT_CONFORMANCE_RESOURCE", ""),
            run_action,
            env["ZT_CONFORMANCE_MARKER"],
        )
    except Refusal as r:
        print(f"refused: {r.kind}: {r}")
        return 0
    except Exception as e:  # noqa: BLE001 - fail closed, say so, never run the action
        print(f"refused: error: {type(e).__name__}: {e}")
        return 0
    print(f"allowed: {done.decision.current_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
