"""An async invoke of an alias follows the event invoke config put on that alias.

AWS: PutFunctionEventInvokeConfig "configures options for asynchronous invocation on a function,
version, or alias" (Lambda API reference, "PutFunctionEventInvokeConfig",
https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html); an event sent
to the alias is retried and routed to destinations by the alias's configuration. SAM's
`AutoPublishAlias` with `EventInvokeConfig` puts the configuration on the alias (Qualifier: the
alias name), so a SAM app invoked through its alias depends on it.
LocalStack 4.14 (`event_manager.Poller.handle_message`): looks the configuration up by the
qualifier of the version the alias points to (`event_invoke_configs.get("1")`), never the alias's:
the alias's MaximumRetryAttempts and destinations are ignored (measured, examples/sam-async, alias
`live` with MaximumRetryAttempts 0 and OnFailure: a failing event ran 3 times, the default retries,
and no record reached the OnFailure queue within 60 s).
Here: while a queued event is handled, the configuration lookup returns the configuration of the
qualifier the event was invoked with (its invoked ARN's alias) when that alias has one; otherwise
LocalStack's lookup is unchanged.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from localstack.services.lambda_.invocation.event_manager import Poller
from localstack.utils.patch import Patches

_invoked = threading.local()


def invoked_qualifier(body: str) -> str | None:
    """The qualifier of the ARN an event was invoked with (None when unqualified or unreadable)."""
    try:
        arn = json.loads(body)["invoked_arn"]
    except (ValueError, KeyError, TypeError):
        return None
    parts = arn.split(":")
    return parts[7] if len(parts) > 7 and parts[7] else None


class InvokedQualifierConfigs(dict):
    """A function's event invoke configs whose lookup prefers the invoked alias's own config."""

    def get(self, key: Any, default: Any = None) -> Any:
        qualifier = getattr(_invoked, "qualifier", None)
        if qualifier is not None and qualifier != key and dict.__contains__(self, qualifier):
            return dict.__getitem__(self, qualifier)
        return dict.get(self, key, default)


def _handle_message(fn, self: Poller, message: dict) -> None:
    function = self.version_manager.function
    if not isinstance(function.event_invoke_configs, InvokedQualifierConfigs):
        function.event_invoke_configs = InvokedQualifierConfigs(function.event_invoke_configs)
    _invoked.qualifier = invoked_qualifier(message.get("Body", ""))
    try:
        return fn(self, message)
    finally:
        _invoked.qualifier = None


def patches() -> Patches:
    p = Patches()
    p.function(Poller.handle_message, _handle_message)
    return p
