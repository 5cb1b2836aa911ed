"""Validate once, decode once: the agent runs the values it validated (a tool's arguments are checked one
time per call), native tool calls are decoded by the one decoder (toolcalls.parse_openai_tool_calls), the
assistant message carries ToolCall.to_openai's entries, and undecodable arguments reach the model as
"your arguments were not valid JSON". Real HTTP to the loopback OpenAI-protocol stub.

One request, validated once (issue 21, item 4): an execute body is parsed once and validated once into an
``ExecuteRequest``, whichever way it is answered (JSON or a stream), its headers are combined once, and the
agent takes the validated instruction and documents as they are (a ``RunInput``). Each step is counted.
(The Worker's path, a body with ``"stream"`` parsed once, is checked in tests/cloudflare/test_worker_entry.py.)"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, field_validator

from lmstudio_agent.endpoint import auth, contract, router as routes
from lmstudio_agent.agent import documents as documents_module
from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteRequest, HeaderMap, header_map
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from lmstudio_agent.endpoint.streaming import StreamResponse
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.agent.messages import final_answer
from lmstudio_agent.model.toolcalls import ToolCall, parse_openai_tool_calls
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import MODEL_ID, _completion, _json_reply, text, tool_call

VALIDATIONS: list[str] = []


class Order(BaseModel):
    item: str
    quantity: int

    @field_validator("item")
    @classmethod
    def _count(cls, value: str) -> str:
        VALIDATIONS.append(value)
        return value.strip()


def registry(seen: list) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    def place_order(order: Order) -> str:
        """Place an order.

        Args:
            order: What to order.
        """
        seen.append(order)
        return f"ordered {order.quantity} x {order.item}"

    return reg


def agent(stub, seen: list) -> Agent:
    return Agent(client=ChatClient(stub.base_url, model="scripted-model"), tools=registry(seen),
                 goals=[Goal("Persona", "You help.")], mode="native")


def raw_tool_call(name: str, arguments: str):
    """A native tool call whose arguments string is sent exactly as given."""
    message = {"role": "assistant", "content": None,
               "tool_calls": [{"id": "call_raw", "type": "function", "function": {"name": name, "arguments": arguments}}]}
    return _json_reply(_completion(message, "tool_calls"))


async def test_a_call_is_validated_once_and_runs_with_the_validated_values(openai_stub):
    VALIDATIONS.clear()
    seen: list = []
    openai_stub.enqueue(tool_call("place_order", {"order": {"item": "  tea ", "quantity": "2"}}), text("Done."))
    transcript = await agent(openai_stub, seen).run("Order two teas")
    assert VALIDATIONS == ["  tea "]  # once, in the agent's check; the run did not validate again
    assert len(seen) == 1 and isinstance(seen[0], Order) and seen[0].item == "tea" and seen[0].quantity == 2
    assert final_answer(transcript) == "Done."


async def test_undecodable_arguments_reach_the_model_as_not_valid_json(openai_stub):
    seen: list = []
    openai_stub.enqueue(raw_tool_call("place_order", '{"order": {"item": "tea", '), text("Sorry."))
    transcript = await agent(openai_stub, seen).run("Order tea")
    assert seen == []  # nothing ran
    error = next(m for m in transcript if m.type == "error")
    assert "were not valid JSON" in error.content and "__unparsable__" not in error.content
    # The model gets its answer as the tool result of its own call, paired by id.
    second = openai_stub.chat_requests[1]["messages"]
    assistant = next(m for m in second if m["role"] == "assistant")
    assert assistant["tool_calls"] == [ToolCall("place_order", {}, id="call_raw").to_openai()]
    reply = next(m for m in second if m["role"] == "tool")
    assert reply["tool_call_id"] == "call_raw"
    assert reply["content"].startswith("Error: Your arguments to place_order were not valid JSON")
    assert "unknown argument" not in reply["content"]


def test_the_one_decoder_keeps_an_undecodable_call_for_the_agent_and_drops_it_for_training_rows():
    entries = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}},
               {"id": "b", "type": "function", "function": {"name": "g", "arguments": "[1, 2]"}},
               {"id": "c", "type": "function", "function": {"name": "not a name!", "arguments": "{}"}}]
    kept, errors = parse_openai_tool_calls(entries, keep_invalid=True)
    assert [(c.name, c.id, c.arguments) for c in kept] == [("f", "a", {}), ("g", "b", {}), ("not a name!", "c", {})]
    assert "were not valid JSON" in kept[0].invalid and "must be an object" in kept[1].invalid
    assert kept[2].invalid is None  # a name no tool has: the agent answers "unknown tool"
    strict, _ = parse_openai_tool_calls(entries)
    assert strict == []
    assert len(errors) == 2


async def test_the_client_decodes_native_calls_with_the_one_decoder(openai_stub):
    openai_stub.enqueue(raw_tool_call("f", "{'a': 1}"))  # a Python literal: the decoder's fallback reads it
    response = await ChatClient(openai_stub.base_url, model="m").chat([{"role": "user", "content": "x"}])
    assert response.tool_calls == [ToolCall("f", {"a": 1}, id="call_raw")]
    assert json.loads(response.tool_calls[0].to_openai()["function"]["arguments"]) == {"a": 1}


# ------------------------------------------------------------------------ one request, validated once
# (issue 21, item 4): the body is read once and validated once into an ExecuteRequest, whichever way the
# request is answered (JSON, stream), and the agent takes the validated instruction and documents as they are.

KEY = "client-key-123"


def _echo_registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    def echo(text: str) -> str:
        """Echo text back.

        Args:
            text: The text.
        """
        return text

    return reg


class Counts:
    """Counts the real work of each step a request could repeat."""

    def __init__(self, monkeypatch) -> None:
        self.validations = 0  # ExecuteRequest.model_validate
        self.parses = 0  # the hardened JSON parse of a body
        self.header_maps = 0  # header_map combining raw headers (a HeaderMap passed on costs nothing)
        self.document_checks = 0  # documents.check_documents
        self.input_checks = 0  # the agent's check of a plain instruction (a RunInput is taken as it is)
        validate, loads, combine = ExecuteRequest.model_validate, contract._safe_loads, contract.header_map
        check_documents, check_input = documents_module.check_documents, documents_module.check_input

        def counting_validate(data, *args, **kwargs):
            self.validations += 1
            return validate(data, *args, **kwargs)

        def counting_loads(raw):
            self.parses += 1
            return loads(raw)

        def counting_header_map(headers):
            self.header_maps += not isinstance(headers, HeaderMap)
            return combine(headers)

        def counting_check_documents(value):
            self.document_checks += 1
            return check_documents(value)

        def counting_check_input(instruction, value=None):
            self.input_checks += not isinstance(instruction, documents_module.RunInput)
            return check_input(instruction, value)

        monkeypatch.setattr(ExecuteRequest, "model_validate", counting_validate)
        monkeypatch.setattr(contract, "_safe_loads", counting_loads)
        for module in (auth, routes):  # auth's credential rule and the router call it
            monkeypatch.setattr(module, "header_map", counting_header_map)
        monkeypatch.setattr(contract, "check_documents", counting_check_documents)
        monkeypatch.setattr(documents_module, "check_documents", counting_check_documents)
        from lmstudio_agent.agent import loop as agent_module

        monkeypatch.setattr(agent_module, "check_input", counting_check_input)


def _backend(stub) -> AgentBackend:
    return AgentBackend(EndpointSettings(lm_studio_url=stub.base_url, model=MODEL_ID, tool_mode="native"),
                        _echo_registry())


async def _route(backend, body: dict, headers: dict | None = None):
    raw_headers = [("Authorization", f"Bearer {KEY}"), *((headers or {}).items())]  # pairs, as the hub passes them
    response = await routes.route("POST", "/execute", raw_headers, json.dumps(body), backend=backend, api_key=KEY,
                                  cache=MemoryCacheStore())
    if isinstance(response, StreamResponse):
        return b"".join([chunk async for chunk in response.body]).decode()
    return response


async def test_a_json_execute_is_parsed_once_validated_once_and_its_headers_combined_once(openai_stub, monkeypatch):
    counts = Counts(monkeypatch)
    openai_stub.enqueue(text("Hello there."))
    response = await _route(_backend(openai_stub), {"instruction": "Say hello", "documents": {"note": "hi"}})
    assert response.status == 200 and final_answer(
        [contract.AgentMessage.model_validate(m) for m in response.body["result"]]) == "Hello there."
    assert (counts.parses, counts.validations, counts.header_maps) == (1, 1, 1)
    # The documents were checked once (by ExecuteRequest), the agent checked nothing again.
    assert (counts.document_checks, counts.input_checks) == (1, 0)


async def test_a_streamed_execute_is_parsed_once_and_validated_once(openai_stub, monkeypatch):
    counts = Counts(monkeypatch)
    openai_stub.enqueue(text("Hello there."))
    raw = await _route(_backend(openai_stub), {"instruction": "Say hello", "stream": True})
    assert '"type":"finish","messageMetadata":{"success":true' in raw
    assert (counts.parses, counts.validations, counts.header_maps, counts.input_checks) == (1, 1, 1, 0)


async def test_a_refused_body_is_refused_by_the_one_validation_with_the_contracts_messages(monkeypatch):
    counts = Counts(monkeypatch)
    cases = [
        ({"tools": []}, ErrorCode.INVALID_INSTRUCTION, "Missing instruction"),
        ({"instruction": None}, ErrorCode.INVALID_INSTRUCTION, "Missing instruction"),
        ({"instruction": "   "}, ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string"),
        ({"instruction": 7, "extra": 1}, ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string"),
        ({"instruction": "x", "documents": {"bad name": "t"}}, ErrorCode.INVALID_REQUEST, "Invalid document name"),
        ({"instruction": "x" * 16_001, "documents": {"a": 1}}, ErrorCode.INVALID_REQUEST, "Document 'a' must be a string"),
        ({"instruction": "x" * 16_001}, ErrorCode.INVALID_REQUEST, "Invalid request body: instruction"),
    ]
    for body, code, message in cases:
        with pytest.raises(AgentError) as info:
            contract.execute_request_from(body)
        assert info.value.code is code and info.value.message.startswith(message), (body, info.value.message)
    assert counts.validations == len(cases)


def test_header_map_runs_once_a_header_map_is_taken_as_it_is():
    combined = header_map([("Authorization", "Bearer a"), ("authorization", "Bearer b"), ("X-Api-Key", "k")])
    assert combined == {"authorization": "Bearer a, Bearer b", "x-api-key": "k"}
    assert header_map(combined) is combined
    # The rule for a credential sent twice still sees the repeat in the combined map.
    with pytest.raises(AgentError) as info:
        contract.presented_key(combined)
    assert info.value.code is ErrorCode.UNAUTHORIZED


async def test_the_agent_checks_a_plain_instruction_once_and_takes_a_run_input_as_it_is(openai_stub):
    seen: list = []
    with pytest.raises(AgentError) as info:
        await agent(openai_stub, seen).run("   ")
    assert info.value.code is ErrorCode.INVALID_INSTRUCTION
    with pytest.raises(AgentError) as info:
        await agent(openai_stub, seen).run("x", documents={"bad name": "t"})
    assert info.value.code is ErrorCode.INVALID_REQUEST
    openai_stub.enqueue(text("Done."))
    run_input = documents_module.RunInput("Order tea", {"menu": "tea, coffee"})
    transcript = await agent(openai_stub, seen).run(run_input)
    assert final_answer(transcript) == "Done."
    with pytest.raises(TypeError):
        documents_module.check_input(run_input, {"other": "text"})
