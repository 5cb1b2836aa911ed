"""The handler against the real embedded model server (llama-cpp-python on SmolLM2-135M), as LM Studio."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.contract import ExecuteResponse
from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.drivers import EndpointConfig
from tests.endpoints.drivers.lambda_driver import LambdaContext, LambdaDriver, proxy_event, response_of


@pytest.mark.model
@pytest.mark.slow
def test_execute_against_the_embedded_model(embedded_model):
    config = EndpointConfig(upstream_url=embedded_model.base_url, upstream_token=embedded_model.api_key,
                            client_key=CLIENT_KEY, model=embedded_model.model, deadline_seconds=120.0,
                            tool_mode="auto")
    driver = LambdaDriver(config)
    try:
        payload = {"instruction": "Say hello to the user in one short sentence.", "tools": ["prompt_expert"]}
        event = proxy_event("POST", "/execute", headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                            body=json.dumps(payload))
        # A CPU-only 135M model is slow on two cores: give this invocation the room a real deploy would not.
        first = response_of(driver.invoke(event, LambdaContext(timeout_seconds=150.0)))
        assert first.status == 200, first.text
        answer = ExecuteResponse.model_validate(first.json)
        assert answer.cached is False and answer.result
        assert answer.result[-1].type in {"result", "error"}
        # The same request again is a cache hit served from DynamoDB, byte for byte the same transcript.
        second = response_of(driver.invoke(event, LambdaContext(timeout_seconds=150.0)))
        assert second.json["cached"] is True and second.json["result"] == first.json["result"]
    finally:
        driver.close()
