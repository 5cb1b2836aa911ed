"""Validate once, decode once: the agent runs the values it validated (a tool's arguments are checked one
time per call), native tool calls are decoded by the one decoder (toolcalls.parse_openai_tool_calls), the
assistant message carries ToolCall.to_openai's entries, and undecodable arguments reach the model as
"your arguments were not valid JSON". Real HTTP to the loopback OpenAI-protocol stub."""

from __future__ import annotations

import json

from pydantic import BaseModel, field_validator

from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.agent.messages import final_answer
from lmstudio_agent.model.toolcalls import ToolCall, parse_openai_tool_calls
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import _completion, _json_reply, text, tool_call

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
