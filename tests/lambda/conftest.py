"""Fixtures for the Lambda-only tests: the handler with moto's AWS against the loopback upstream."""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any, Optional
from collections.abc import Callable, Iterator, Mapping

import pytest

from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import EndpointConfig
from tests.endpoints.drivers.lambda_driver import LambdaDriver
from tests.support.openai_stub import MODEL_ID


@pytest.fixture
def make_lambda(openai_stub) -> Iterator[Callable[..., LambdaDriver]]:
    """``make_lambda(extra_env=None, **config_overrides)``: one live handler at a time."""
    openai_stub.token = UPSTREAM_TOKEN
    live: list[LambdaDriver] = []

    def factory(extra_env: Optional[Mapping[str, str]] = None, **overrides: Any) -> LambdaDriver:
        while live:
            live.pop().close()
        config = EndpointConfig(upstream_url=openai_stub.base_url, upstream_token=UPSTREAM_TOKEN,
                                client_key=CLIENT_KEY, model=MODEL_ID, deadline_seconds=5.0, tool_mode="native")
        driver = LambdaDriver(dataclasses.replace(config, **overrides), extra_env=extra_env)
        live.append(driver)
        return driver

    yield factory
    while live:
        live.pop().close()


@pytest.fixture
def handler(make_lambda) -> LambdaDriver:
    return make_lambda()


@pytest.fixture
def powertools_logs(capsys):
    """Powertools' Logger keeps the stream of the first handler module loaded in this session. Calling this
    fixture's value (in the test body, where capsys captures) points it at the test's stdout; afterwards it is
    pointed at the session's stdout again, since the test's stream is closed by then."""

    def point_here() -> None:
        for log_handler in logging.getLogger("lmstudio-agent").handlers:
            log_handler.stream = sys.stdout

    yield point_here
    point_here()
