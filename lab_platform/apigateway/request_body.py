"""API Gateway hands the integration the request body as the client sent it, whatever its type.

AWS: a REST API passes the method request's body to a Lambda proxy integration untouched: the
event's `body` is the payload as sent (text, or base64 with `isBase64Encoded` for the API's binary
media types), whatever the Content-Type (API Gateway developer guide, "Set up Lambda proxy
integrations", input format). A webhook sender or `curl -d '{"order_id": "A-1"}'`, which sends
`application/x-www-form-urlencoded`, therefore reaches the function with the JSON it wrote.
LocalStack 4.14: the execute-api parser rebuilds a form-encoded body from werkzeug's parsed form
(`rolo.request.restore_payload`): `{"order_id":"A-1"}` arrives as
`%7B%22order_id%22%3A%22A-1%22%7D=` (measured), and the notify handler answers 400 "request
body is not JSON" to a request AWS would accept.
Here: the parser reads the raw bytes (`get_data(parse_form_data=False)`), which werkzeug caches,
so a later `request.form` still parses them. If something read the form before (the stream is
then consumed), LocalStack's own reconstruction is kept.
"""

from __future__ import annotations

from localstack.services.apigateway.next_gen.execute_api.handlers import parse
from localstack.utils.patch import Patch, Patches


def raw_body(restore_payload, request) -> bytes:
    """The body as the client sent it; LocalStack's rebuilt one if the form was parsed already."""
    if request.shallow or "form" in request.__dict__:
        return restore_payload(request)
    return request.get_data(cache=True, parse_form_data=False)


def patches() -> Patches:
    original = parse.restore_payload

    def restore_payload(request) -> bytes:
        return raw_body(original, request)

    return Patches([Patch(parse, "restore_payload", restore_payload)])
