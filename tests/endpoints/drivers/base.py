"""What every endpoint driver offers the shared contract scenarios.

A driver stands one adapter (the Lambda handler, the Worker, the bridge hub) up against a real loopback
upstream and turns ``request(...)`` into that platform's own request shape, so one scenario table checks
the contract on every adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol, Sequence, Union

RequestBody = Union[str, bytes, None]
# A mapping, or (name, value) pairs when a header is sent more than once.
Headers = Union[Mapping[str, str], Sequence[tuple[str, str]]]


@dataclass
class EndpointConfig:
    """The deployment a driver stands up: its upstream, its secrets and its limits."""

    upstream_url: str
    upstream_token: Optional[str]
    client_key: str
    model: str
    deadline_seconds: float
    tool_mode: str = "auto"
    allowed_tools: Optional[list[str]] = None
    cache_ttl_seconds: int = 3600


@dataclass
class DriverResponse:
    """One response as the client sees it. ``headers`` keys are lower-case; ``json`` is {} for a non-JSON body."""

    status: int
    headers: dict[str, str]
    json: dict[str, Any]
    text: str = ""

    @classmethod
    def from_parts(cls, status: int, headers: Mapping[str, str], text: str) -> "DriverResponse":
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        return cls(
            status=status,
            headers={k.lower(): v for k, v in headers.items()},
            json=data if isinstance(data, dict) else {},
            text=text,
        )


class EndpointDriver(Protocol):
    """A synchronous client for one adapter (an async adapter runs its coroutine with ``asyncio.run`` inside)."""

    name: str

    def request(
        self, method: str, path: str, *, headers: Optional[Headers] = None, body: RequestBody = None
    ) -> DriverResponse:
        """Send one HTTP request (``body`` raw: str or bytes, so malformed bodies reach the adapter as they are)."""
        ...

    def cache_entries(self) -> int:
        """How many entries the adapter's cache store holds now."""
        ...

    def close(self) -> None: ...
