"""GET /ping behind the API key and usage plan."""

import json


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"pong": True})}
