"""boto3 clients for one emulated account on LocalStack."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from bootstrap.topology import REGION

# Control-plane calls only; standard retries ride out LocalStack being busy on 2 shared cores.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=120, connect_timeout=5)


# `lambda` is a Python keyword: clients.awslambda is the Lambda client.
_ALIASES = {"awslambda": "lambda"}
# LocalStack's DynamoDB answers 500 for good when DynamoDB Local could not be installed:
# find that out in one retry, not five.
_FAST_FAIL = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120, connect_timeout=5)


class Clients:
    """Lazily created clients for `account` (LocalStack maps a 12-digit access key to it)."""

    def __init__(self, localstack_url: str, account: str, region: str = REGION) -> None:
        self.localstack_url = localstack_url
        self.account = account
        self.region = region
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = boto3.client(
                _ALIASES.get(service, service),
                endpoint_url=self.localstack_url,
                region_name=self.region,
                aws_access_key_id=self.account,
                aws_secret_access_key="test",
                config=_FAST_FAIL if service == "dynamodb" else _CONFIG,
            )
        return self._clients[service]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"
