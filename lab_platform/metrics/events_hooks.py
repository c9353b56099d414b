"""EventBridge MatchedEvents / Invocations / FailedInvocations per bus and rule.

AWS publishes them per rule. LocalStack 4.14 counts only internal analytics. Wrapping the rule
processing of `EventsProvider` and `TargetSender.process_event` sees every match and delivery.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from localstack.services.events import provider
from localstack.services.events.provider import EventsProvider
from localstack.services.events.target import TargetSender
from localstack.utils.patch import Patch, Patches

from lab_platform.metrics import registry as m


def rule_labels(rule_arn: str) -> dict[str, str]:
    """arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME -> labels (bus `default` when absent)."""
    parts = rule_arn.split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 else ["rule", rule_arn]
    bus, rule = (resource[1], resource[2]) if len(resource) >= 3 else ("default", resource[-1])
    return {
        "account": parts[4] if len(parts) > 4 else "",
        "region": parts[3] if len(parts) > 3 else "",
        "event_bus": bus,
        "rule": rule,
    }


# The rule whose pattern `_process_rules` is evaluating on this thread (None elsewhere, e.g. in
# the TestEventPattern API, which must not count as a match).
_current_rule = threading.local()


def _process_rules(fn, self, rule, region, account_id, event_formatted, trace_header) -> Any:
    _current_rule.arn = rule.arn
    try:
        return fn(self, rule, region, account_id, event_formatted, trace_header)
    finally:
        _current_rule.arn = None


def _matches_event(fn, pattern, event) -> bool:
    matched = fn(pattern, event)
    if matched and (arn := getattr(_current_rule, "arn", None)):
        m.events_matched.labels(**rule_labels(arn)).inc()
    return matched


def _process_event(fn, self, event, trace_header) -> Any:
    labels = rule_labels(self.rule_arn)
    m.events_invocations.labels(**labels).inc()
    try:
        return fn(self, event, trace_header)
    except Exception:
        m.events_failed_invocations.labels(**labels).inc()
        raise


def patches() -> Patches:
    p = Patches()
    p.function(EventsProvider._process_rules, _process_rules)
    # the provider module's own name, so the pattern is evaluated once per rule and event
    p.add(
        Patch(provider, "matches_event", functools.partial(_matches_event, provider.matches_event))
    )
    p.function(TargetSender.process_event, _process_event)
    return p
