"""A plain AWS Lambda handler, invoked asynchronously: it sleeps and fails when the event says so."""

import json
import time


def handler(event, context):
    print(json.dumps({"id": event.get("id"), "fail": bool(event.get("fail"))}))
    time.sleep(float(event.get("sleep", 0)))
    if event.get("fail"):
        raise RuntimeError(f"failing on purpose: {event.get('id')}")
    return {"ok": event.get("id")}
