"""CI's production-install check, run by the production venv's Python: the console
is ready (database, broker, a worker's heartbeat), and a commander's probe runs
through the worker."""

import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.http_client import form_fields, post, run_form_action, sign_in  # noqa: E402

base = sys.argv[1]
# Ready: the database and the broker up, and the worker's heartbeat seen (no beat
# runs in this check, so the answer is 200 "degraded" for beat alone).
deadline = time.monotonic() + 60
ready = None
parts: dict = {}
while time.monotonic() < deadline:
    try:
        ready = httpx.get(f"{base}/health/ready", timeout=3)
        parts = json.loads(ready.text)
        if ready.status_code == 200 and parts.get("workers") == "ok":
            break
    except (httpx.HTTPError, ValueError):
        pass
    time.sleep(0.5)
print("health/ready:", ready.text if ready is not None else "no answer")
assert ready is not None and ready.status_code == 200
assert (parts["database"], parts["broker"], parts["workers"]) == ("ok", "ok", "ok")

commander = sign_in(base, "commander", "prod-check-password")
new = commander.get("/incidents/new/")
opened = post(
    commander,
    "/incidents/new/",
    {
        **form_fields(new.text, "/incidents/new/"),
        "playbook": "redis-down-unreachable",
        "title": "Production install check",
    },
)
assert opened.status_code == 302, opened.text[:500]
incident = opened.headers["location"]
page = commander.get(incident).text
action = run_form_action(page)
ran = post(commander, action, form_fields(page, action))
assert ran.status_code in (200, 302), ran.text[:500]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    text = commander.get(incident).text
    if "PONG" in text:
        print(f"probe ran through the worker: redis-cli ping -> PONG ({incident})")
        break
    time.sleep(0.5)
else:
    raise SystemExit("the probe did not come back with PONG within 60 s")
