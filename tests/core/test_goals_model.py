"""Goals, honest outcomes and answers on the real embedded model (gateway-model serving SmolLM2-135M with its
tool adapter, constrained mode), and the small-model policy left out of the other modes.

The tools are this file's own (a library's loans), not the evaluation suites' vocabulary."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent import Agent, ChatClient, Goal, SmallModelPolicy, ToolRegistry
from lmstudio_agent.builtins import builtin_registry
from lmstudio_agent.errors import ErrorCode
from lmstudio_agent.agent.messages import answered, final_answer
from lmstudio_agent.model.modes import ToolMode

pytestmark = [pytest.mark.model, pytest.mark.slow]


def loans_registry(renewed: list[str]) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def find_loan(member_email: str) -> dict:
        """Find the book a library member has on loan.

        Args:
            member_email: The member's e-mail address.
        """
        return {"loan": "b7-441", "title": "The Long Winter", "member": member_email}

    @registry.tool(side_effects=True)
    def renew_loan(loan: str) -> dict:
        """Renew a loan for two more weeks.

        Args:
            loan: The loan's code.
        """
        raise RuntimeError("the renewal service is down")

    @registry.tool
    def list_branches() -> list:
        """List the library's branches."""
        return ["North", "Harbour"]

    return registry


GOALS = [Goal("Persona", "You are the library's loan assistant."),
         Goal("Renewals", "For each member who writes in:\n1. Find the member's loan\n2. Renew that loan\n"
                          "3. Tell the member the new due date")]


async def _client(embedded_model) -> ChatClient:
    return ChatClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model, timeout=300)


async def test_a_required_step_that_never_succeeds_ends_the_run_without_an_answer(embedded_model):
    renewed: list[str] = []
    async with await _client(embedded_model) as client:
        agent = Agent(client=client, tools=loans_registry(renewed), goals=GOALS, mode="constrained")
        transcript = await agent.run("Hi, this is mo@example.net, could you sort out my book?")
    events = [m.to_dict() for m in transcript]
    assert not answered(transcript), events
    assert events[-1]["type"] == "error" and events[-1]["code"] == ErrorCode.NO_ANSWER.value, events
    assert "renew_loan" in events[-1]["content"], events
    assert any(e.get("tool") == "find_loan" and e["type"] == "result" for e in events), events


@pytest.mark.parametrize("review, label", [
    ("The parcel came two weeks late, the lid was broken and nobody answered my complaint.", "negative"),
    ("Lovely staff, a spotless room and the best breakfast we have had anywhere. We will be back!", "positive"),
])
async def test_the_answer_states_the_tools_label(embedded_model, review, label):
    async with await _client(embedded_model) as client:
        agent = Agent(client=client, tools=builtin_registry().select(names=["analyze_sentiment"]), mode="constrained")
        transcript = await agent.run(f"What is the sentiment of this review? {review}")
    results = [json.loads(m.content) for m in transcript if m.type == "result" and m.tool == "analyze_sentiment"]
    answer = final_answer(transcript) or ""
    assert results and results[-1]["sentiment"] == label, [m.to_dict() for m in transcript]
    assert label in answer.lower() and review[:40].lower() not in answer.lower(), answer


async def test_the_parsed_mode_and_a_policy_off_are_never_narrowed(embedded_model):
    """A model served in the parsed (or native) mode reads the full tool list whatever the plan; the constrained
    mode with the policy off offers every tool and the answer."""
    async with await _client(embedded_model) as client:
        parsed = Agent(client=client, tools=loans_registry([]), goals=GOALS, mode=ToolMode.PARSED)
        first = await parsed.first_turn("Could you renew the loan of mo@example.net?")
        listing = first.messages[0]["content"]
        assert all(name in listing for name in ("find_loan", "renew_loan", "list_branches"))
        assert "response_format" not in parsed.strategy(ToolMode.PARSED).request(list(parsed.registry))

        free = Agent(client=client, tools=loans_registry([]), goals=GOALS, mode="constrained", policy=None)
        assert free.policy == SmallModelPolicy.off()
        turn = await free.first_turn("Could you renew the loan of mo@example.net?")
        assert all(name in turn.messages[0]["content"] for name in ("find_loan", "renew_loan", "list_branches"))
        schema = free.strategy(ToolMode.CONSTRAINED).request(
            list(free.offered_tools()), turn.messages)["response_format"]["json_schema"]["schema"]
        offered = [v["properties"].get("tool", v["properties"]["type"])["const"] for v in schema["anyOf"]]
        assert offered == ["find_loan", "renew_loan", "list_branches", "answer"]
