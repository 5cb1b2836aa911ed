"""A DynamoDB table as core's ``cache.CacheStore``: the Lambda's only cache code.

The rules (key, TTL, no-cache, side effects, ``cached: true``) live in ``lmstudio_agent.endpoint.cache`` and
``lmstudio_agent.endpoint.contract``; this module only stores and reads strings. Items: partition key ``key`` (S),
``value`` (S, the JSON transcript) and ``expires_at`` (N, epoch seconds; the table's TTL attribute).
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

# Every call is bounded: a slow cache must cost at most a few seconds of the run's deadline, never hang it.
CLIENT_CONFIG = {"connect_timeout": 2, "read_timeout": 3, "retries": {"max_attempts": 2, "mode": "standard"}}


class DynamoTable:
    """One DynamoDB table and a lazily made client bounded by ``client_config`` (the stores below share it).

    Args:
        table_name: The table's name.
        client: A boto3 DynamoDB client to use; by default one is made on first use.
        clock: Epoch seconds, for the items' ``expires_at``.
    """

    client_config: dict[str, Any] = CLIENT_CONFIG

    def __init__(self, table_name: str, *, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:  # created on first use: boto3 costs ~0.2 s to import, so not at cold start
            import boto3
            from botocore.config import Config

            self._client = boto3.client("dynamodb", config=Config(**self.client_config))
        return self._client


class DynamoCacheStore(DynamoTable):
    """Reads and writes cache entries in one DynamoDB table (boto3 is synchronous; the calls are short)."""

    async def get(self, key: str) -> str | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"key": {"S": key}}, ProjectionExpression="#v, expires_at",
            ExpressionAttributeNames={"#v": "value"},
        ).get("Item")
        if not item:
            return None
        # DynamoDB deletes expired items lazily (often hours later), so expiry is checked on every read.
        if float(item["expires_at"]["N"]) <= self._clock():
            return None
        return item["value"]["S"]

    async def put(self, key: str, value: str, ttl_seconds: int) -> None:
        expires_at = int(self._clock() + ttl_seconds)
        self.client.put_item(
            TableName=self.table_name,
            Item={"key": {"S": key}, "value": {"S": value}, "expires_at": {"N": str(expires_at)}},
        )
