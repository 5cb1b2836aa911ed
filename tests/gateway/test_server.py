"""The real gateway (llama-cpp-python's server on the embedded SmolLM2-135M) over real loopback HTTP.

All tests share the session's ``embedded_model`` server (tests/conftest.py), started by
``lmstudio_gateway.process.run_in_background()``.
"""

from __future__ import annotations

import json
import math
from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel, ConfigDict

pytestmark = pytest.mark.model

TIMEOUT = httpx.Timeout(120.0, connect=5.0)


def _root(server) -> str:
    return server.base_url.removesuffix("/v1")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _chat_body(server, content: str = "Say hello.", **extra) -> dict:
    return {"model": server.model, "messages": [{"role": "user", "content": content}],
            "max_tokens": 12, "temperature": 0, **extra}


class Review(BaseModel):
    """The structured answer the schema tests ask for (an enum field plus a bounded integer)."""

    model_config = ConfigDict(extra="forbid")
    sentiment: Literal["positive", "negative", "neutral"]
    stars: int


# --------------------------------------------------------------------------------------------- keys


def test_health_is_open_without_a_key(embedded_model) -> None:
    response = httpx.get(f"{_root(embedded_model)}/health", timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["model"] == embedded_model.model
    assert isinstance(body["timestamp"], int)


def test_chat_without_a_key_is_401(embedded_model) -> None:
    response = httpx.post(f"{embedded_model.base_url}/chat/completions", json=_chat_body(embedded_model), timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_chat_with_a_wrong_key_is_401(embedded_model) -> None:
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        json=_chat_body(embedded_model),
        headers=_auth(embedded_model.api_key + "x"),
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert "Invalid API key" in response.json()["error"]["message"]


def test_chat_with_the_key_answers_with_text(embedded_model) -> None:
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        json=_chat_body(embedded_model, "What is the capital of France?"),
        headers=_auth(embedded_model.api_key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == embedded_model.model
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"].strip()
    assert 0 < body["usage"]["completion_tokens"] <= 12


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("GET", "/api/v0/models"),
        ("GET", "/api/v0/models/smollm2-135m-instruct"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/embeddings"),
        ("POST", "/extras/tokenize"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-route"),
    ],
)
def test_every_route_but_health_needs_the_key(embedded_model, method: str, path: str) -> None:
    url = f"{_root(embedded_model)}{path}"
    assert httpx.request(method, url, json={}, timeout=TIMEOUT).status_code == 401
    wrong = httpx.request(method, url, json={}, headers=_auth("sk-lm-not-the-key"), timeout=TIMEOUT)
    assert wrong.status_code == 401


def test_cors_preflight_is_answered_without_the_key_and_without_data(embedded_model) -> None:
    response = httpx.options(
        f"{embedded_model.base_url}/chat/completions",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" in response.headers
    # Without the preflight headers an OPTIONS request is an ordinary request, and needs the key.
    assert httpx.options(f"{embedded_model.base_url}/models", timeout=TIMEOUT).status_code == 401


def test_the_key_is_never_logged(embedded_model) -> None:
    httpx.get(f"{embedded_model.base_url}/models", headers=_auth(embedded_model.api_key), timeout=TIMEOUT)
    assert embedded_model.api_key not in embedded_model.log_path.read_text(errors="replace")


# ------------------------------------------------------------------------------------ openai client


def test_official_openai_client_chats_and_lists_models(embedded_model) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key=embedded_model.api_key, timeout=120, max_retries=0)
    completion = client.chat.completions.create(
        model=embedded_model.model,
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=10,
        temperature=0,
    )
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert embedded_model.model in [model.id for model in client.models.list()]


def test_official_openai_client_with_a_wrong_key_gets_authentication_error(embedded_model) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key="sk-lm-wrong", timeout=30, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=embedded_model.model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401


def test_official_openai_client_streams(embedded_model) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key=embedded_model.api_key, timeout=120, max_retries=0)
    stream = client.chat.completions.create(
        model=embedded_model.model,
        messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=12,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces).strip()


# ------------------------------------------------------------------------------ structured output


@pytest.mark.parametrize(
    "prompt",
    [
        "Review: 'Great phone, the battery lasts for days.' Give the sentiment and stars.",
        "Write a short poem about the sea.",  # nothing in the prompt asks for JSON: only the grammar does
    ],
)
def test_lmstudio_json_schema_response_format_is_enforced(embedded_model, prompt: str) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key=embedded_model.api_key, timeout=120, max_retries=0)
    completion = client.chat.completions.create(
        model=embedded_model.model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=60,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "review", "strict": True, "schema": Review.model_json_schema()},
        },
    )
    review = Review.model_validate_json(completion.choices[0].message.content)  # raises if off-schema
    assert review.sentiment in {"positive", "negative", "neutral"}


def test_enum_schema_restricts_the_answer_to_the_enum(embedded_model) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["teal", "magenta"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        json=_chat_body(
            embedded_model,
            "What colour is the sky? Answer blue.",
            max_tokens=30,
            response_format={"type": "json_schema", "json_schema": {"name": "colour", "schema": schema}},
        ),
        headers=_auth(embedded_model.api_key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert json.loads(response.json()["choices"][0]["message"]["content"]) in ({"colour": "teal"}, {"colour": "magenta"})


@pytest.mark.parametrize(
    ("response_format", "fragment"),
    [
        ({"type": "json_schema"}, "json_schema must be an object"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema must be a JSON schema object"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}},
            "unsupported JSON schema",
        ),
    ],
)
def test_bad_json_schema_is_a_clear_400(embedded_model, response_format: dict, fragment: str) -> None:
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        json=_chat_body(embedded_model, response_format=response_format),
        headers=_auth(embedded_model.api_key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["param"] == "response_format"
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "content", "fragment"),
    [
        ("/v1/chat/completions", b"{not json", "not valid JSON"),
        ("/v1/chat/completions", b"[1, 2]", "must be a JSON object"),
        ("/v1/chat/completions", b"{}", "messages must be a non-empty list"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}', "max_tokens"),
        ("/v1/completions", b'{"prompt": "hi", "temperature": "hot"}', "temperature"),
        ("/extras/tokenize", b'{"input": 5}', "input"),
    ],
)
def test_bad_bodies_are_a_clear_400_not_a_500(embedded_model, path: str, content: bytes, fragment: str) -> None:
    response = httpx.post(
        f"{_root(embedded_model)}{path}",
        content=content,
        headers={**_auth(embedded_model.api_key), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]
    assert "File " not in error["message"] and "Traceback" not in response.text


def test_oversized_body_is_413(embedded_model) -> None:
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        content=b"x" * (8 * 1024 * 1024 + 1),
        headers={**_auth(embedded_model.api_key), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/chat/completions", "/completions", "/embeddings"])
def test_a_model_the_gateway_does_not_serve_is_refused_openai_style(embedded_model, path: str) -> None:
    body = {"chat": _chat_body(embedded_model, model="lfm2-350m"),
            "comp": {"model": "lfm2-350m", "prompt": "Hi", "max_tokens": 4},
            "embe": {"model": "lfm2-350m", "input": "Hi"}}[path[1:5]]
    response = httpx.post(f"{embedded_model.base_url}{path}", json=body, headers=_auth(embedded_model.api_key),
                          timeout=TIMEOUT)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "lfm2-350m" in error["message"] and embedded_model.model in error["message"]


def test_the_openai_client_gets_not_found_for_another_model(embedded_model) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key=embedded_model.api_key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert caught.value.code == "model_not_found"


def test_a_request_without_model_is_answered_by_the_served_model(embedded_model) -> None:
    body = _chat_body(embedded_model)
    del body["model"]
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions", json=body, headers=_auth(embedded_model.api_key), timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.json()["model"] == embedded_model.model  # the alias, never the file path


def test_llama_cpp_native_json_object_schema_still_works(embedded_model) -> None:
    response = httpx.post(
        f"{embedded_model.base_url}/chat/completions",
        json=_chat_body(
            embedded_model,
            "Review: 'awful'.",
            max_tokens=60,
            response_format={"type": "json_object", "schema": Review.model_json_schema()},
        ),
        headers=_auth(embedded_model.api_key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    Review.model_validate_json(response.json()["choices"][0]["message"]["content"])


# --------------------------------------------------------------------------------------- logprobs


def test_chat_completions_return_logprobs(embedded_model) -> None:
    client = openai.OpenAI(base_url=embedded_model.base_url, api_key=embedded_model.api_key, timeout=120, max_retries=0)
    completion = client.chat.completions.create(
        model=embedded_model.model,
        messages=[{"role": "user", "content": "Is 'I love it' positive or negative?"}],
        max_tokens=5,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    tokens = completion.choices[0].logprobs.content
    assert tokens and len(tokens) == completion.usage.completion_tokens
    for token in tokens:
        assert token.logprob <= 0.0
        assert len(token.top_logprobs) == 3
        # Greedy decoding picks the most likely token, so it heads its own top list.
        assert math.isclose(token.top_logprobs[0].logprob, token.logprob, rel_tol=1e-5)
        assert token.top_logprobs[0].token == token.token


# ------------------------------------------------------------------------------------- listings


def test_lmstudio_legacy_models_listing(embedded_model) -> None:
    response = httpx.get(f"{_root(embedded_model)}/api/v0/models", headers=_auth(embedded_model.api_key), timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    [entry] = body["data"]
    assert entry["id"] == embedded_model.model
    assert entry["object"] == "model"
    assert entry["type"] == "llm"
    assert entry["arch"] == "llama"
    assert entry["compatibility_type"] == "gguf"
    assert entry["quantization"] == "Q4_1"
    assert entry["state"] == "loaded"
    assert entry["max_context_length"] == 8192
    # No native tool support: the core's auto-detection must pick grammar-constrained JSON.
    assert entry["capabilities"] == []


def test_lmstudio_single_model_lookup(embedded_model) -> None:
    root, headers = _root(embedded_model), _auth(embedded_model.api_key)
    found = httpx.get(f"{root}/api/v0/models/{embedded_model.model}", headers=headers, timeout=TIMEOUT)
    assert found.status_code == 200 and found.json()["id"] == embedded_model.model
    missing = httpx.get(f"{root}/api/v0/models/no-such-model", headers=headers, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_openai_models_listing(embedded_model) -> None:
    response = httpx.get(f"{embedded_model.base_url}/models", headers=_auth(embedded_model.api_key), timeout=TIMEOUT)
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == [embedded_model.model]
