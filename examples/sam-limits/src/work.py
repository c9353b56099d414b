"""An SQS consumer that works `sleep` seconds per message and logs when it ran, so the concurrency
its mapping allowed can be read back from its log (one JSON line per message)."""

import json
import time


def handler(event, context):
    for record in event["Records"]:
        body = json.loads(record["body"])
        started = time.time()
        time.sleep(float(body.get("sleep", 0)))
        print(json.dumps({"span": [started, time.time()], "tag": body.get("tag", ""), "id": body.get("id")}))
