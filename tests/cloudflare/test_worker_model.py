"""The Worker against the real embedded model (gateway-model serving SmolLM2-135M over loopback HTTP).

BOUNDARY: as in the contract scenarios, the Workers runtime is the stand-in of tests/cloudflare/runtime.py;
the request goes through the real entry.py, core agent loop and HTTP to a real model server.
"""

from __future__ import annotations

import json

import pytest

from tests.endpoints.drivers.base import EndpointConfig
from tests.endpoints.drivers.worker_driver import make_driver
from tests.support.model_runs import assert_sentiment_run

pytestmark = [pytest.mark.model, pytest.mark.slow]

CLIENT_KEY = "worker-model-test-key"


def test_worker_runs_a_task_on_the_embedded_model_then_serves_it_from_kv(embedded_model) -> None:
    driver = make_driver(
        EndpointConfig(
            upstream_url=embedded_model.base_url,
            upstream_token=embedded_model.api_key,
            client_key=CLIENT_KEY,
            model=embedded_model.model,
            deadline_seconds=60.0,
            tool_mode="auto",
        )
    )
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    body = json.dumps({"instruction": "Is this review positive or negative? 'I love this phone.'",
                       "tools": ["analyze_sentiment"]})

    first = driver.request("POST", "/execute", headers=headers, body=body)
    assert first.status == 200, first.text
    assert first.json["success"] is True and first.json["cached"] is False
    transcript = first.json["result"]
    # The right tool ran, found the right label, and the answer says it in words.
    assert_sentiment_run(transcript, "positive")
    assert driver.cache_entries() == 1

    second = driver.request("POST", "/execute", headers=headers, body=body)
    assert second.status == 200 and second.json["cached"] is True
    assert second.json["result"] == transcript
