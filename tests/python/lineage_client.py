"""A client written the way the zt-infra lineage's Python adapters call their control plane:
POST /actions with {actor, action, resource, context}, read {ok, decision, reason, audit: {...}}.
Standard library only. Prints one JSON object: the HTTP status and the parsed answer.

    python3 lineage_client.py --base http://127.0.0.1:8080 --actor agent-py \
        --action hello-world.say_hello --resource demo/greeting [--token TOKEN]
"""
import argparse
import json
import sys
import urllib.error
import urllib.request


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--actor", required=True)
    p.add_argument("--action", required=True)
    p.add_argument("--resource", default="")
    p.add_argument("--token")
    a = p.parse_args()
    body = json.dumps({"actor": a.actor, "action": a.action, "resource": a.resource,
                       "context": {"framework": "langgraph", "step": 1}}).encode()
    req = urllib.request.Request(a.base.rstrip("/") + "/actions", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    if a.token:
        req.add_header("Authorization", "Bearer " + a.token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:  # 403 is a decision too
        status, raw = e.code, e.read()
    answer = json.loads(raw.decode("utf-8"))
    # What the lineage's adapters read: ok, decision, reason and the audit record's fields.
    audit = answer.get("audit", {})
    for field in ("timestamp", "previous_hash", "current_hash", "kms_signature"):
        if field not in audit:
            print(json.dumps({"status": status, "error": "audit lacks " + field}))
            return 1
    allowed = answer["ok"] is True and answer["decision"] == "allow"
    print(json.dumps({"status": status, "allowed": allowed, "answer": answer}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
