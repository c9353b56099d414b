"""Both topologies provisioned on a test LocalStack, with an endpoints file of their own and a
Prometheus scraping that LocalStack: the lab the report and experiment tests run against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap.provision import provision_all
from lab_kernel.settings import Settings
from lab_kernel import endpoints as ep
from tests.support import prometheus as prom_support


@contextmanager
def provisioned_lab(localstack_url: str, folder: Path) -> Iterator[tuple[ep.Endpoints, Path]]:
    """Yields the parsed endpoints and the file they were written to (`folder/endpoints.json`)."""
    endpoints_file = folder / "endpoints.json"
    data = provision_all(localstack_url, Settings.load(), endpoints_file=None)
    prometheus = prom_support.start({"localstack": [localstack_url.removeprefix("http://")]})
    try:
        data["prometheus_url"] = prometheus.url
        endpoints_file.write_text(json.dumps(data, indent=2))
        yield ep.load(endpoints_file), endpoints_file
    finally:
        prometheus.stop()
