"""A real LocalStack 4.14 for tests: a host process, or a container when Docker is reachable.

Each instance gets a free port and its own state folder, so test runs never touch a running lab.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from labctl.localstack_host import is_ready, localstack_environment
from labctl.settings import REPO_ROOT, Settings

DEFAULT_ACCOUNT = "000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_reachable() -> bool:
    if os.environ.get("LAB_MODE") == "host":
        return False
    try:
        import docker  # testcontainers' dependency

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable engine
        return False


@dataclass
class LocalStackInstance:
    url: str
    log_file: Path | None = None
    pid: int | None = None  # host mode: the LocalStack process
    _stop: Any = field(default=None, repr=False)

    def client(self, service: str, account: str = DEFAULT_ACCOUNT, region: str = "us-east-1", **kw):
        """A boto3 client for `account` (LocalStack maps a 12-digit access key to that account)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=account,
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=kw.pop("read_timeout", 120)),
            **kw,
        )

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file else ""

    def stop(self) -> None:
        if self._stop:
            self._stop()
            self._stop = None


def start_host(extra_env: dict[str, str] | None = None, timeout: float = 90) -> LocalStackInstance:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="lab-test-localstack-"))
    env = localstack_environment(Settings.load(), state, port)
    env.update(extra_env or {})
    log_file = state / "localstack.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localstack.runtime.main"],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # the process group may hold stragglers even after the leader exited
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not os.environ.get("LAB_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"LocalStack exited at start:\n{log_file.read_text()[-3000:]}")
        try:
            if is_ready(url):
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"LocalStack not healthy after {timeout} s")
        time.sleep(0.3)
    return LocalStackInstance(url=url, log_file=log_file, pid=proc.pid, _stop=stop)


def start_container(extra_env: dict[str, str] | None = None) -> LocalStackInstance:
    """The lab's LocalStack image (docker/localstack) through testcontainers."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.waiting_utils import wait_for_logs

    settings = Settings.load()
    image = DockerImage(
        path=str(REPO_ROOT),
        dockerfile_path="docker/localstack/Dockerfile",
        tag="serverless-boundary-lab/localstack:test",
        buildargs={"LOCALSTACK_VERSION": settings.get("LOCALSTACK_VERSION")},
    )
    image.build()
    container = DockerContainer(str(image)).with_exposed_ports(4566)
    for key, value in {
        "LAMBDA_RUNTIME_EXECUTOR": settings.get("LAMBDA_RUNTIME_EXECUTOR"),
        "LAMBDA_LIMITS_CONCURRENT_EXECUTIONS": settings.get("LAB_ACCOUNT_CONCURRENCY"),
        "DISABLE_EVENTS": "1",
        **(extra_env or {}),
    }.items():
        container = container.with_env(key, value)
    container.start()
    wait_for_logs(container, "Ready.", timeout=120)
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(4566)}"
    return LocalStackInstance(url=url, _stop=container.stop)


def start(extra_env: dict[str, str] | None = None) -> LocalStackInstance:
    return start_container(extra_env) if docker_reachable() else start_host(extra_env)
