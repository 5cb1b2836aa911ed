"""gateway-model under hostile input, on the real server (llama-cpp-python, the embedded SmolLM2-135M):
bodies it must refuse with a 400/415 in OpenAI's shape (never a 500, never the body echoed), grammar
bounds, the wall-clock limit, and generation stopped when the client disconnects."""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest

from lmstudio_agent.model.grammar_bounds import MAX_ENUM_VALUES, MAX_SCHEMA_BYTES

pytestmark = pytest.mark.model

TIMEOUT = httpx.Timeout(120.0, connect=5.0)
# SmolLM2's end-of-text tokens, pushed out so a generation runs to max_tokens (a long, steady job).
NO_EOS = {"0": -100.0, "1": -100.0, "2": -100.0}


def _deep_schema(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


DEEP_SCHEMA = _deep_schema(12)  # 24 levels of JSON: over MAX_SCHEMA_DEPTH (16)


def _post(server, body: bytes | dict, *, content_type: str | None = "application/json", path="/v1/chat/completions"):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.root_url + path, content=content, headers=headers, timeout=TIMEOUT)


def _chat(server, content: str = "hi", **extra) -> dict:
    return {"model": server.model, "messages": [{"role": "user", "content": content}], "max_tokens": 8, **extra}


def _assert_openai_error(response, status: int, fragment: str, *, secret: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"], error
    assert "Traceback" not in response.text and 'File "' not in response.text
    if secret:
        assert secret not in response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_a_chat_body_that_is_not_declared_json_is_415_and_not_echoed(embedded_model, content_type):
    marker = "do-not-echo-7f3a"
    response = _post(embedded_model, _chat(embedded_model, marker), content_type=content_type)
    _assert_openai_error(response, 415, "Content-Type must be application/json", secret=marker)


def test_json_with_a_charset_is_accepted(embedded_model):
    response = _post(embedded_model, _chat(embedded_model), content_type="application/json; charset=utf-8")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"messages": [{"role": "user", "content": "' + b"[" * 50 + b'"}], "x": ' + b"[" * 100 + b"]" * 100 + b"}",
         "nested too deeply"),
        (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "not valid Unicode"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "\\udc00": 1}', "not valid Unicode"),
        (b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', "not valid UTF-8"),
    ],
    ids=["deep-array", "deep-field", "lone-surrogate-value", "lone-surrogate-key", "invalid-utf8"],
)
def test_hostile_json_is_a_400(embedded_model, body, fragment):
    _assert_openai_error(_post(embedded_model, body), 400, fragment)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"v": {"type": "string", "enum": [f"v{i}" for i in range(20_000)]}}}}}},
         "response_format: an enum has 20000 values"),
        ({"response_format": {"type": "json_object", "schema": {
            "type": "string", "enum": [f"v{i}" for i in range(MAX_ENUM_VALUES + 1)]}}},
         f"the limit is {MAX_ENUM_VALUES}"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 100}
                                             for i in range(MAX_SCHEMA_BYTES // 100)}}}}},
         "bytes; the limit is"),
        ({"response_format": {"type": "json_object", "schema": DEEP_SCHEMA}},
         "nests deeper than"),
        ({"response_format": {"type": "json_object", "schema": {"anyOf": [{"const": i} for i in range(100)]}}},
         "anyOf has 100 branches"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"v": {"enum": list(range(MAX_ENUM_VALUES + 1))}}}}}]},
         "tools[0].function.parameters"),
        ({"grammar": "root ::= " + " | ".join(f'"{i}"' for i in range(10_000))}, "grammar:"),
    ],
    ids=["enum-20000", "enum-300", "schema-bytes", "schema-depth", "any-of", "tool-parameters", "raw-grammar"],
)
def test_grammars_over_the_bounds_are_a_quick_400(embedded_model, extra, fragment):
    started = time.monotonic()
    response = _post(embedded_model, _chat(embedded_model, **extra))
    _assert_openai_error(response, 400, fragment)
    assert time.monotonic() - started < 10  # refused before any grammar was compiled, not after minutes


def test_a_schema_at_the_bounds_still_works(embedded_model):
    # the bounds are the core's: the constrained mode's own schemas stay inside them
    schema = {"type": "object", "properties": {"v": {"type": "string",
                                                     "enum": [f"value-{i}" for i in range(MAX_ENUM_VALUES)]}},
              "required": ["v"], "additionalProperties": False}
    response = _post(embedded_model, _chat(embedded_model, "Pick one.", max_tokens=16, temperature=0,
                                           response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["choices"][0]["message"]["content"])["v"].startswith("value-")


@pytest.fixture(scope="module")
def limited_model():
    """A second gateway with a 2 s wall-clock limit per request."""
    from lmstudio_gateway.process import run_in_background

    with run_in_background(max_request_seconds=2) as server:
        # The first generation on a cold model is slow (seconds before its first token): warm it up until a
        # short request fits in the limit.
        for _ in range(30):
            if _post(server, _chat(server, "Say hi.", max_tokens=4, temperature=0)).status_code == 200:
                break
        yield server


def _long_job(server) -> dict:
    return _chat(server, "Count from one to one thousand in words.", max_tokens=3000, temperature=0,
                 logit_bias=NO_EOS, logit_bias_type="input_ids")


def _short_job_seconds(server) -> float:
    started = time.monotonic()
    response = _post(server, _chat(server, "Say hi.", max_tokens=4, temperature=0))
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def test_the_wall_clock_limit_answers_504_and_frees_the_model(limited_model):
    started = time.monotonic()
    response = _post(limited_model, _long_job(limited_model))
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "request_timeout"
    assert 1.5 <= elapsed < 10
    # Generation stopped: the next request does not wait behind 3000 tokens (tens of seconds on this CPU).
    assert _short_job_seconds(limited_model) < 10


def test_generation_stops_when_the_client_disconnects(limited_model):
    # A raw socket, closed half a second in: the server notices, stops generating, and serves the next one.
    host, port = limited_model.root_url.removeprefix("http://").split(":")
    body = json.dumps(_long_job(limited_model) | {"max_tokens": 3000}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {limited_model.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head + body)
        time.sleep(0.5)
    started = time.monotonic()
    seconds = _short_job_seconds(limited_model)
    assert seconds < 1.8, f"the next request waited {seconds:.1f}s: generation went on after the client left"
    assert time.monotonic() - started < 10


def test_a_key_in_the_query_string_never_reaches_the_log(embedded_model):
    secret = "sk-gw-in-the-query-0123456789"
    response = httpx.get(f"{embedded_model.base_url}/models?api_key={secret}&x=1",
                         headers={"Authorization": f"Bearer {embedded_model.api_key}"}, timeout=TIMEOUT)
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:  # the access line is written after the response
        log = embedded_model.log_path.read_text(errors="replace")
        if "/v1/models?<redacted>" in log:
            break
        time.sleep(0.1)
    assert "/v1/models?<redacted>" in log
    assert secret not in log and embedded_model.api_key not in log


@pytest.mark.parametrize("body, param", [
    ({"tokens": [1, 2, 10**9]}, "tokens"), ({"tokens": [-1]}, "tokens"),
])
def test_token_ids_outside_the_vocabulary_are_a_400_not_a_crash(embedded_model, body, param):
    response = _post(embedded_model, body, path="/extras/detokenize")
    _assert_openai_error(response, 400, "every id must be an integer")
    assert response.json()["error"]["param"] == param
    assert _post(embedded_model, {"tokens": [1, 2]}, path="/extras/detokenize").status_code == 200  # still up


@pytest.mark.parametrize("text", ["A \U0001F600", "caf\u00e9 \U0001F375"])
def test_token_ids_that_end_mid_character_detokenize_with_a_replacement_character(embedded_model, text):
    """llama_cpp's route decoded the ids' bytes strictly, so a prefix of a character's tokens was a 500; the
    gateway's route gives U+FFFD for the partial character, as Hugging Face tokenizers' decode does."""
    tokenized = _post(embedded_model, {"input": text}, path="/extras/tokenize")
    assert tokenized.status_code == 200, tokenized.text
    ids = tokenized.json()["tokens"]
    whole = _post(embedded_model, {"tokens": ids}, path="/extras/detokenize")
    assert whole.status_code == 200, whole.text
    assert whole.json()["text"].strip() == text
    # The last character is more than one token in SmolLM2's vocabulary: dropping its last id leaves its start.
    cut = _post(embedded_model, {"tokens": ids[:-1]}, path="/extras/detokenize")
    assert cut.status_code == 200, cut.text
    assert cut.json()["text"].strip() == text[:-1] + "\ufffd"


def test_logit_bias_keys_outside_the_vocabulary_are_a_400(embedded_model):
    response = _post(embedded_model, _chat(embedded_model, logit_bias={"999999999": 5}))
    _assert_openai_error(response, 400, "logit_bias: keys must be token ids")


def test_a_pattern_llama_cpp_cannot_parse_is_rewritten_or_refused_never_a_crash(embedded_model):
    """llama.cpp's converter copies regex escapes into GBNF literals it cannot parse, and the parse failure
    took the whole server down: \\d is rewritten to [0-9], an escape with no safe form is a 400."""
    schema = {"type": "object", "properties": {"d": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}},
              "required": ["d"], "additionalProperties": False}
    response = _post(embedded_model, _chat(embedded_model, "A date.", max_tokens=24, temperature=0,
                                           response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", json.loads(response.json()["choices"][0]["message"]["content"])["d"])
    schema["properties"]["d"]["pattern"] = r"^\bx$"
    refused = _post(embedded_model, _chat(embedded_model, "x", response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    _assert_openai_error(refused, 400, "pattern")
    assert _post(embedded_model, _chat(embedded_model, "Say hi.", max_tokens=4)).status_code == 200  # still up
