"""EventBridge MatchedEvents / Invocations / FailedInvocations per bus and rule.

AWS publishes them per rule. LocalStack 4.14 counts only internal analytics. Wrapping the rule
processing of `EventsProvider` and `TargetSender.process_event` sees every match and delivery.
"""

from __future__ import annotations

from typing import Any

from localstack.services.events.provider import EventsProvider
from localstack.services.events.target import TargetSender
from localstack.utils.event_matcher import matches_event
from localstack.utils.patch import Patches

from lab_platform.metrics import registry as m


def rule_labels(rule_arn: str) -> dict[str, str]:
    """arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME -> labels (bus `default` when absent)."""
    parts = rule_arn.split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 else ["rule", rule_arn]
    bus, rule = (resource[1], resource[2]) if len(resource) >= 3 else ("default", resource[-1])
    return {"account": parts[4] if len(parts) > 4 else "", "region": parts[3] if len(parts) > 3 else "",
            "event_bus": bus, "rule": rule}


def _process_rules(fn, self, rule, region, account_id, event_formatted, trace_header) -> Any:
    if rule.targets is not None and matches_event(rule.event_pattern, event_formatted):
        m.events_matched.labels(**rule_labels(rule.arn)).inc()
    return fn(self, rule, region, account_id, event_formatted, trace_header)


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
    p.function(TargetSender.process_event, _process_event)
    return p
