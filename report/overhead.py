"""Is the emulator a boundary in this run? A probe in an account of its own, beside the storm.

On AWS a storm in one account does not slow another account's functions or APIs. In the lab both
share a LocalStack process and the machine's cores, so whatever a probe in its own account
(444444444444, its own concurrency pool) measures above its idle figure is the emulator's overhead,
not AWS's behaviour. The experiment runs the probe on the storm topology's LocalStack (the
catalogue's `storm`) from before the load to the end of the load: a trivial function invoked directly and
through a REST API with a Lambda proxy integration, twice a second. Issue #15 holds the storm to
at most 2x the idle p50 and under 500 ms at p95.

Pure statistics (`summarise`) apart from the `Probe` thread, which talks to LocalStack.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass

import boto3
import requests
from botocore.config import Config

from bootstrap.aws import Clients
from bootstrap.progress import Progress
from bootstrap.resources import ensure_lambda_proxy_api, ensure_role
from bootstrap.topology import api_url
from report.quantiles import nearest_rank

PROBE_ACCOUNT = "444444444444"
RATIO_CEILING = 2.0  # issue #15: at most 2x the idle p50 ...
P95_CEILING_SECONDS = 0.5  # ... and under 500 ms at p95
HANDLER = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'
LOGS_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}


@dataclass(frozen=True)
class Sample:
    at: float  # unix seconds
    invoke: float | None  # seconds; None when the call failed
    api: float | None


@dataclass(frozen=True)
class MinuteFigures:
    minute: int  # minutes since the load started
    samples: int
    invoke_p50: float
    invoke_p95: float
    api_p50: float
    api_p95: float


@dataclass(frozen=True)
class Overhead:
    idle_invoke_p50: float
    idle_api_p50: float
    minutes: tuple[MinuteFigures, ...]
    failed: int  # probe calls that failed during the load

    def worst(self) -> MinuteFigures | None:
        """The minute where the probe was slowest against its idle figure."""
        if not self.minutes:
            return None
        return max(self.minutes, key=lambda m: max(m.invoke_p50 / self.idle_invoke_p50, m.api_p50 / self.idle_api_p50))

    def within_bounds(self) -> bool | None:
        worst = self.worst()
        if worst is None:
            return None
        return (worst.invoke_p50 <= RATIO_CEILING * self.idle_invoke_p50
                and worst.api_p50 <= RATIO_CEILING * self.idle_api_p50
                and max(m.invoke_p95 for m in self.minutes) < P95_CEILING_SECONDS
                and max(m.api_p95 for m in self.minutes) < P95_CEILING_SECONDS
                and self.failed == 0)


# A minute the load only touched (its first and last, a few probes) has no p95 worth judging: its
# "p95" is the slowest of a handful, e.g. 1.2 s of 3 probes while the seed run's load stopped.
MIN_PROBES_PER_MINUTE = 20


def summarise(idle: list[Sample], load: list[Sample], load_start: float) -> Overhead | None:
    """Per-minute p50/p95 of the probe during the load, against its idle p50."""
    idle_invoke = [s.invoke for s in idle if s.invoke is not None]
    idle_api = [s.api for s in idle if s.api is not None]
    if not idle_invoke or not idle_api:
        return None
    by_minute: dict[int, list[Sample]] = {}
    for s in load:
        by_minute.setdefault(int((s.at - load_start) // 60), []).append(s)
    minutes = []
    for minute, samples in sorted(by_minute.items()):
        invoke = [s.invoke for s in samples if s.invoke is not None]
        api = [s.api for s in samples if s.api is not None]
        if invoke and api and len(samples) >= MIN_PROBES_PER_MINUTE:
            minutes.append(MinuteFigures(minute, len(samples), nearest_rank(invoke, .5), nearest_rank(invoke, .95),
                                         nearest_rank(api, .5), nearest_rank(api, .95)))
    failed = sum(1 for s in load if s.invoke is None or s.api is None)
    return Overhead(nearest_rank(idle_invoke, .5), nearest_rank(idle_api, .5), tuple(minutes), failed)


class Probe:
    """Provisions the probe account's function and API, then samples both in a thread."""

    def __init__(self, url: str, region: str = "us-east-1", interval: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self.region = region
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-overhead-probe", daemon=True)
        config = Config(retries={"max_attempts": 0}, read_timeout=30, connect_timeout=5)
        self._lambda = self._client("lambda", config)
        self.function = ""
        self.api_id = ""
        self.api_url = ""

    def _client(self, service: str, config: Config | None = None):
        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=PROBE_ACCOUNT, aws_secret_access_key="test", config=config)

    def provision(self) -> Probe:
        """The probe's function and its API, through bootstrap's own provisioning (quietly)."""
        c = Clients(self.url, PROBE_ACCOUNT, self.region)
        p = Progress(out=io.StringIO())
        role = ensure_role(c, p, "probe", "lab-overhead-probe", LOGS_POLICY)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", HANDLER)
        self.function = f"lab-probe-{uuid.uuid4().hex[:8]}"
        arn = c.awslambda.create_function(FunctionName=self.function, Runtime="python3.13", Handler="app.handler",
                                          Role=role, Code={"ZipFile": buffer.getvalue()}, MemorySize=128)["FunctionArn"]
        c.awslambda.get_waiter("function_active_v2").wait(
            FunctionName=self.function, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        self.api_id = ensure_lambda_proxy_api(c, p, "probe", self.function, "overhead probe", "probe", self.function,
                                              arn, api_key_required=False)
        self.api_url = api_url(self.url, self.api_id, "probe")
        for _ in range(5):  # one warm environment, open connections
            self.sample()
        return self

    def sample(self) -> Sample:
        at = time.time()
        invoke = api = None
        try:
            began = time.perf_counter()
            self._lambda.invoke(FunctionName=self.function, Payload=b"{}")
            invoke = time.perf_counter() - began
        except Exception:  # noqa: BLE001 - a failed probe is counted, not raised
            pass
        try:
            began = time.perf_counter()
            requests.post(self.api_url, data="{}", timeout=30).raise_for_status()
            api = time.perf_counter() - began
        except requests.RequestException:
            pass
        return Sample(at, invoke, api)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=40)
        return list(self.samples)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.interval)

    def idle(self, count: int = 20) -> list[Sample]:
        """Samples taken now, one after the other: the baseline, before the load starts."""
        out = []
        for _ in range(count):
            out.append(self.sample())
            time.sleep(self.interval)
        return out

    def teardown(self) -> None:
        """Removes the probe's function and API (best effort at the end of a run)."""
        for remove in (lambda: self._client("lambda").delete_function(FunctionName=self.function),
                       lambda: self._client("apigateway").delete_rest_api(restApiId=self.api_id)):
            try:
                remove()
            except Exception:  # noqa: BLE001 - best effort
                pass
