"""Fault configuration: the JSON document stored in SSM at `/lab/faults/<FunctionName>`.

Pure logic (no boto3), shared by the in-function injector and `python -m resilience.chaos`, so a
configuration the CLI accepts is exactly one the function will run.

Document shape (every key but `faults` optional)::

    {
      "enabled": true,
      "expires_at": "2026-11-23T08:00:00Z",          # whole document reverts by itself after this
      "faults": {
        "latency":     {"rate": 1.0, "min_ms": 100, "max_ms": 200},
        "timeout":     {"rate": 0.1},
        "exception":   {"rate": 0.2, "message": "injected"},
        "status_code": {"rate": 0.5, "status_code": 503},
        "disk_space":  {"rate": 1.0, "mb": 64},
        "denylist":    {"rate": 1.0, "hosts": ["courier.*", "dynamodb\\..*"]},
        "corruption":  {"rate": 0.3, "style": "truncate"},
        "crash":       {"rate": 0.1, "how": "kill", "when": "before"},
        "<mode>": {..., "expires_at": "...", "match": [{"path": "body.customer", "regex": "^vip"}]}
      }
    }

`rate` is the probability (0..1) that the mode fires on one invocation, rolled per mode.
`match` rules (all must hold) restrict a mode to events whose field at a dotted `path` equals
`equals` or matches `regex` (a JSON string `body` is parsed so `body.x` works for API events).

Modes run in the fixed order of `MODE_ORDER` whatever order the document lists them in: first the
ones that change the environment the handler runs in, then delays, then the ones that end the
invocation before the handler, then the handler, then the one that alters its response.
"""

from __future__ import annotations

import json
import re
import re._parser as sre_parse  # the stdlib regex parser: lets us inspect a pattern's structure
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Fixed, documented order (see module docstring). Index = position.
MODE_ORDER: tuple[str, ...] = (
    "denylist",  # patch socket connects before the handler opens any connection
    "disk_space",  # fill /tmp before the handler writes to it
    "latency",  # delay, then still run the handler
    "timeout",  # sleep past the function timeout: the platform kills the invocation
    "crash",  # the environment's process dies (before the handler, or after it returned)
    "exception",  # raise before the handler
    "status_code",  # answer an error response instead of the handler
    "corruption",  # run the handler, then corrupt what it returned
)
MODES = frozenset(MODE_ORDER)

# Limits that keep a fault from harming the host the lab runs on (functions are host processes).
MAX_LATENCY_MS = 60_000
MAX_DISK_MB = 512  # Lambda's default ephemeral /tmp size
MAX_REGEX_LEN = 200
MAX_PATTERNS = 50
CORRUPTION_STYLES = ("truncate", "garble", "empty")
# kill: SIGKILL, as the kernel ends a function out of memory; exit: the process exits with status 1
CRASH_HOW = ("kill", "exit")
# before: the handler never runs; after: it ran (the courier may have the order) but its result
# is lost, so the platform's retry delivers the order twice
CRASH_WHEN = ("before", "after")

_MODE_KEYS: dict[str, set[str]] = {
    "latency": {"min_ms", "max_ms"},
    "timeout": set(),
    "exception": {"message"},
    "status_code": {"status_code", "body"},
    "disk_space": {"mb"},
    "denylist": {"hosts"},
    "corruption": {"style"},
    "crash": {"how", "when"},
}
_COMMON_KEYS = {"rate", "match", "expires_at"}


class FaultConfigError(ValueError):
    """A fault document that must not be applied; the message says what to fix."""


@dataclass(frozen=True)
class MatchRule:
    path: str
    equals: Any = None
    regex: re.Pattern[str] | None = None

    def holds(self, event: Any) -> bool:
        found, value = lookup(event, self.path)
        if not found:
            return False
        if self.regex is not None:
            # bounded input: even a safe pattern should not scan a huge payload
            return self.regex.search(str(value)[:4096]) is not None
        return value == self.equals


@dataclass(frozen=True)
class ModeConfig:
    mode: str
    rate: float
    params: dict[str, Any] = field(default_factory=dict)
    match: tuple[MatchRule, ...] = ()
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    def matches(self, event: Any) -> bool:
        return all(rule.holds(event) for rule in self.match)


@dataclass(frozen=True)
class FaultConfig:
    enabled: bool
    modes: tuple[ModeConfig, ...]  # already sorted by MODE_ORDER
    expires_at: datetime | None = None

    def active_modes(self, now: datetime) -> list[ModeConfig]:
        """Modes that are switched on and not expired, in execution order."""
        if not self.enabled or (self.expires_at is not None and now >= self.expires_at):
            return []
        return [m for m in self.modes if m.active(now)]


def lookup(event: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path into an event; a JSON string on the way (API `body`) is parsed."""
    current = event
    for part in path.split("."):
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                return False, None
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise FaultConfigError(f"{where}: expires_at must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FaultConfigError(f"{where}: expires_at {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise FaultConfigError(f"{where}: expires_at {value!r} needs a timezone (e.g. Z)")
    return parsed.astimezone(UTC)


def _unbounded_repeat_inside(items: Any) -> bool:
    """True if the parsed sub-pattern contains a repeat with no upper bound."""
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            if high == sre_parse.MAXREPEAT or high > 100 or _unbounded_repeat_inside(sub):
                return True
        elif name == "SUBPATTERN":
            if _unbounded_repeat_inside(arg[-1]):
                return True
        elif name == "BRANCH":
            if any(_unbounded_repeat_inside(b) for b in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _unbounded_repeat_inside(arg[1]):
                return True
    return False


def _nested_quantifier(items: Any) -> bool:
    """Catastrophic backtracking comes from a repeated group that itself repeats, e.g. (a+)+,
    (a*)*, (a|aa)+ with a repeated branch. Python's `re` backtracks, so such a pattern can hang the
    function on a crafted input; we refuse it instead of timing it out (a thread cannot be killed)."""
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            if (high == sre_parse.MAXREPEAT or high > 1) and _unbounded_repeat_inside(sub):
                return True
            if _nested_quantifier(sub):
                return True
        elif name == "SUBPATTERN":
            if _nested_quantifier(arg[-1]):
                return True
        elif name == "BRANCH":
            if any(_nested_quantifier(b) for b in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _nested_quantifier(arg[1]):
                return True
    return False


def _ambiguous_branch_repeat(items: Any) -> bool:
    """A repeated alternation whose branches can match the same text, e.g. (a|a)* or (a|ab)*."""
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = arg
            if high == sre_parse.MAXREPEAT or high > 1:
                for sop, sarg in sub:
                    inner = sarg[-1] if str(sop) == "SUBPATTERN" else None
                    for iop, iarg in inner or []:
                        if str(iop) == "BRANCH":
                            firsts = [_first_literal(b) for b in iarg[1]]
                            if None in firsts or len(set(firsts)) < len(firsts):
                                return True
            if _ambiguous_branch_repeat(sub):
                return True
        elif name == "SUBPATTERN" and _ambiguous_branch_repeat(arg[-1]):
            return True
    return False


def _first_literal(branch: Any) -> int | None:
    for op, arg in branch:
        return arg if str(op) == "LITERAL" else None
    return None


def compile_safe_regex(pattern: Any, where: str) -> re.Pattern[str]:
    """Compile a user regex or refuse it with a reason (length, syntax, backtracking risk)."""
    if not isinstance(pattern, str) or not pattern:
        raise FaultConfigError(f"{where}: a pattern must be a non-empty string, got {pattern!r}")
    if len(pattern) > MAX_REGEX_LEN:
        raise FaultConfigError(f"{where}: pattern longer than {MAX_REGEX_LEN} characters")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise FaultConfigError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None
    if _nested_quantifier(list(parsed)) or _ambiguous_branch_repeat(list(parsed)):
        raise FaultConfigError(
            f"{where}: pathological regular expression {pattern!r} (nested or ambiguous repetition "
            "can backtrack catastrophically); rewrite it without a repeated group that repeats"
        )
    return compiled


def _number(value: Any, where: str, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{where} must be a number, got {value!r}")
    if integer and not float(value).is_integer():
        raise FaultConfigError(f"{where} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise FaultConfigError(f"{where} = {value!r} is out of range [{low:g}, {high:g}]")
    return value


def _match_rules(raw: Any, where: str) -> tuple[MatchRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FaultConfigError(f"{where}.match must be a list of rules")
    rules = []
    for i, rule in enumerate(raw):
        at = f"{where}.match[{i}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("path"), str) or not rule["path"]:
            raise FaultConfigError(f"{at}: a rule needs a non-empty 'path'")
        extra = set(rule) - {"path", "equals", "regex"}
        if extra:
            raise FaultConfigError(f"{at}: unknown key(s) {sorted(extra)}")
        if ("equals" in rule) == ("regex" in rule):
            raise FaultConfigError(f"{at}: give exactly one of 'equals' or 'regex'")
        if "regex" in rule:
            rules.append(MatchRule(rule["path"], regex=compile_safe_regex(rule["regex"], at)))
        else:
            rules.append(MatchRule(rule["path"], equals=rule["equals"]))
    return tuple(rules)


def _mode_params(mode: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if mode == "latency":
        low = _number(raw.get("min_ms"), f"{where}.min_ms", 0, MAX_LATENCY_MS)
        high = _number(raw.get("max_ms", low), f"{where}.max_ms", 0, MAX_LATENCY_MS)
        if high < low:
            raise FaultConfigError(f"{where}: max_ms ({high}) is below min_ms ({low})")
        params.update(min_ms=low, max_ms=high)
    elif mode == "exception":
        message = raw.get("message", "Injected fault (lab_faults)")
        if not isinstance(message, str):
            raise FaultConfigError(f"{where}.message must be a string")
        params["message"] = message
    elif mode == "status_code":
        code = raw.get("status_code", 500)
        params["status_code"] = int(_number(code, f"{where}.status_code", 100, 599, integer=True))
        params["body"] = raw.get("body", {"message": "Injected fault (lab_faults)"})
    elif mode == "disk_space":
        params["mb"] = int(_number(raw.get("mb"), f"{where}.mb", 1, MAX_DISK_MB, integer=True))
    elif mode == "denylist":
        hosts = raw.get("hosts")
        if not isinstance(hosts, list) or not hosts:
            raise FaultConfigError(f"{where}.hosts must be a non-empty list of patterns")
        if len(hosts) > MAX_PATTERNS:
            raise FaultConfigError(f"{where}.hosts: at most {MAX_PATTERNS} patterns")
        params["hosts"] = tuple(
            compile_safe_regex(h, f"{where}.hosts[{i}]") for i, h in enumerate(hosts)
        )
    elif mode == "crash":
        for key, choices in (("how", CRASH_HOW), ("when", CRASH_WHEN)):
            value = raw.get(key, choices[0])
            if value not in choices:
                raise FaultConfigError(f"{where}.{key} must be one of {list(choices)}")
            params[key] = value
    elif mode == "corruption":
        style = raw.get("style", "truncate")
        if style not in CORRUPTION_STYLES:
            raise FaultConfigError(f"{where}.style must be one of {list(CORRUPTION_STYLES)}")
        params["style"] = style
    return params


def parse_config(document: Any) -> FaultConfig:
    """Validate a fault document (a JSON string or an already decoded dict).

    Raises FaultConfigError naming the first problem; never anything else for bad input.
    """
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise FaultConfigError(f"fault config is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FaultConfigError("fault config must be a JSON object")
    extra = set(document) - {"enabled", "expires_at", "faults"}
    if extra:
        raise FaultConfigError(f"unknown top-level key(s) {sorted(extra)}")
    enabled = document.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FaultConfigError("'enabled' must be true or false")
    expires = document.get("expires_at")
    expires_at = parse_time(expires, "config") if expires is not None else None
    faults = document.get("faults", {})
    if not isinstance(faults, dict):
        raise FaultConfigError("'faults' must be an object keyed by mode")
    modes = []
    for mode, raw in faults.items():
        where = f"faults.{mode}"
        if mode not in MODES:
            raise FaultConfigError(
                f"unknown fault mode {mode!r}; known modes: {', '.join(MODE_ORDER)}"
            )
        if not isinstance(raw, dict):
            raise FaultConfigError(f"{where} must be an object")
        unknown = set(raw) - _COMMON_KEYS - _MODE_KEYS[mode]
        if unknown:
            raise FaultConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        rate = _number(raw.get("rate", 1.0), f"{where}.rate", 0.0, 1.0)
        mode_expiry = raw.get("expires_at")
        modes.append(
            ModeConfig(
                mode=mode,
                rate=float(rate),
                params=_mode_params(mode, raw, where),
                match=_match_rules(raw.get("match"), where),
                expires_at=parse_time(mode_expiry, where) if mode_expiry is not None else None,
            )
        )
    modes.sort(key=lambda m: MODE_ORDER.index(m.mode))
    return FaultConfig(enabled=enabled, modes=tuple(modes), expires_at=expires_at)


def now_utc() -> datetime:
    return datetime.now(UTC)
