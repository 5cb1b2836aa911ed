"""The handler against the real embedded model server (llama-cpp-python on SmolLM2-135M), as LM Studio."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.endpoint.contract import ExecuteResponse
from tests.endpoints.conftest import CLIENT_KEY
from tests.endpoints.drivers import EndpointConfig
from tests.endpoints.drivers.lambda_driver import LambdaContext, LambdaDriver, proxy_event, response_of
from tests.support.model_runs import assert_sentiment_run


@pytest.mark.model
@pytest.mark.slow
def test_execute_against_the_embedded_model(embedded_model):
    config = EndpointConfig(upstream_url=embedded_model.base_url, upstream_token=embedded_model.api_key,
                            client_key=CLIENT_KEY, model=embedded_model.model, deadline_seconds=120.0,
                            tool_mode="auto")
    driver = LambdaDriver(config)
    try:
        payload = {"instruction": "What is the sentiment of: the service was slow and the food was cold.",
                   "tools": ["analyze_sentiment"]}
        event = proxy_event("POST", "/execute", headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                            body=json.dumps(payload))
        # A CPU-only 135M model is slow on two cores: give this invocation the room a real deploy would not.
        first = response_of(driver.invoke(event, LambdaContext(timeout_seconds=150.0)))
        assert first.status == 200, first.text
        answer = ExecuteResponse.model_validate(first.json)
        assert answer.cached is False
        # The right tool ran, found the right label, and the answer says it in words.
        assert_sentiment_run(first.json["result"], "negative")
        # The same request again is a cache hit served from DynamoDB, byte for byte the same transcript.
        second = response_of(driver.invoke(event, LambdaContext(timeout_seconds=150.0)))
        assert second.json["cached"] is True and second.json["result"] == first.json["result"]
    finally:
        driver.close()
