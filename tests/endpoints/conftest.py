"""Fixtures for the endpoint contract scenarios: one driver per adapter in DRIVER_MODULES, each standing its
adapter up against the real loopback ``openai_stub`` server (which requires the LM Studio token)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any
from collections.abc import Callable, Iterator

import pytest

from tests.endpoints.drivers import DRIVER_MODULES, EndpointConfig, EndpointDriver
from tests.support.openai_stub import MODEL_ID

CLIENT_KEY = "client-key-0123456789abcdef"
UPSTREAM_TOKEN = "sk-lm-upstream-token"


def _driver_module(name: str) -> Any:
    try:
        return importlib.import_module(DRIVER_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == DRIVER_MODULES[name]:
            pytest.skip(f"the {name} driver ({DRIVER_MODULES[name]}) is not in this checkout")
        raise


@pytest.fixture(params=sorted(DRIVER_MODULES))
def driver_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_endpoint(driver_name: str, openai_stub) -> Iterator[Callable[..., EndpointDriver]]:
    """A factory: ``make_endpoint(**config_overrides)`` stands the adapter up (one live driver at a time)."""
    module = _driver_module(driver_name)
    openai_stub.token = UPSTREAM_TOKEN
    live: list[EndpointDriver] = []

    def factory(**overrides: Any) -> EndpointDriver:
        while live:
            live.pop().close()
        config = EndpointConfig(
            upstream_url=openai_stub.base_url, upstream_token=UPSTREAM_TOKEN, client_key=CLIENT_KEY,
            model=MODEL_ID, deadline_seconds=5.0, tool_mode="native",
        )
        driver = module.make_driver(dataclasses.replace(config, **overrides))
        live.append(driver)
        return driver

    yield factory
    while live:
        live.pop().close()


@pytest.fixture
def endpoint(make_endpoint) -> EndpointDriver:
    return make_endpoint()
