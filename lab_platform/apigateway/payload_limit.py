"""API Gateway refuses a request body over 10 MB with 413, before any integration runs.

AWS: a REST API's payload is at most 10 MB, a quota that cannot be raised (API Gateway developer
guide, "Amazon API Gateway quotas": payload size 10 MB); a larger request gets the gateway response
REQUEST_TOO_LARGE, status 413 ("Gateway response types for API Gateway"). The documentation gives
the status, not the message text; the default template `{"message":$context.error.messageString}`
is kept and the text here is "Request Too Long", as AWS is reported to answer.
LocalStack 4.14: no limit; a 12 MB body reached the Lambda integration (and its function).
Here: once the execute-api parser has read the request (the gateway response needs the context
it sets up), the body is measured and LocalStack's own `RequestTooLargeError` raised, which its
gateway exception handler turns into the 413 gateway response, customisable like any other.
"""

from __future__ import annotations

from localstack.services.apigateway.next_gen.execute_api.gateway_response import RequestTooLargeError
from localstack.services.apigateway.next_gen.execute_api.handlers.parse import InvocationRequestParser
from localstack.utils.patch import Patches

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
MESSAGE = "Request Too Long"


def _parse_and_enrich(fn, self, context):
    # Refused once the request is parsed: the gateway response needs the invocation's context
    # variables (its template may use $context), which the parser sets up.
    fn(self, context)
    # the body as read, whatever the Content-Length header said (or a chunked upload did not say)
    if len((context.invocation_request or {}).get("body") or b"") > MAX_PAYLOAD_BYTES:
        raise RequestTooLargeError(MESSAGE)


def patches() -> Patches:
    p = Patches()
    p.function(InvocationRequestParser.parse_and_enrich, _parse_and_enrich)
    return p
