"""Goals drive the run: a plan from the goals' numbered steps and the request together, honest outcomes when a
required step never ran, and answers that state the result (issue 22), against a scripted loopback upstream.

The tools and wordings here are this file's own (a ticket desk and a parcel locker), not the evaluation
suites' vocabulary."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.agent.answers import echoes, in_words, stated
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.errors import ErrorCode
from lmstudio_agent.agent.messages import answered, final_answer
from lmstudio_agent.agent.plan import goal_lines, make_plan
from lmstudio_agent.model.policy import SmallModelPolicy
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import json_content, text, tool_call

DESK: dict[str, dict] = {}

NOTEBOOK_GOAL = """
            Your goal is to process invoices by extracting their data and storing it properly.
            For each invoice:
            1. Extract all important information including numbers, dates, amounts, and line items
            2. Store the extracted data indexed by invoice number
            3. Provide confirmation of successful processing
            4. Handle any errors appropriately
            """


def desk_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def fetch_ticket(reporter: str) -> dict:
        """Fetch the open ticket a reporter filed.

        Args:
            reporter: The reporter's e-mail address.
        """
        return {"ticket": "7f3e", "reporter": reporter, "state": "open"}

    @registry.tool(side_effects=True)
    def close_ticket(ticket: str) -> dict:
        """Close a ticket.

        Args:
            ticket: The ticket's key.
        """
        DESK[ticket] = {"state": "closed"}
        return {"ticket": ticket, "state": "closed"}

    @registry.tool
    def rate_mood(text: str) -> dict:
        """Rate the mood of a message.

        Args:
            text: The message.
        """
        return {"mood": "furious", "confidence": 0.91}

    return registry


GOALS = [Goal("Persona", "You run the help desk."),
         Goal("Procedure", "For each request:\n1. Fetch the reporter's ticket\n2. Close that ticket\n"
                           "3. Confirm what was closed")]


@pytest.fixture(autouse=True)
def _clean_desk():
    DESK.clear()


def agent(server, mode="constrained", goals=GOALS, **kwargs) -> Agent:
    return Agent(client=ChatClient(server.base_url, model="scripted-model"), tools=desk_registry(), goals=goals,
                 mode=mode, **kwargs)


def offered(request: dict) -> list[str]:
    schema = request["response_format"]["json_schema"]["schema"]
    return [v["properties"].get("tool", v["properties"]["type"])["const"] for v in schema.get("anyOf", [schema])]


# ---------------------------------------------------------------------------------------------- the plan


def test_numbered_goal_lines_name_tools_by_their_leading_verb():
    assert goal_lines(NOTEBOOK_GOAL) == [
        "Extract all important information including numbers, dates, amounts, and line items",
        "Store the extracted data indexed by invoice number", "Provide confirmation of successful processing",
        "Handle any errors appropriately"]
    assert goal_lines("For the order: 1. find it; 2. refund it; 3. say so.") == ["find it", "refund it", "say so"]
    assert goal_lines("Be kind and brief.") == []
    from lmstudio_agent.builtins import builtin_registry

    invoices = list(builtin_registry().select(tags=["invoices"]))
    plan = make_plan([Goal("Process Invoices", NOTEBOOK_GOAL)], "Process this invoice.", invoices)
    # "Store the extracted data ..." shares more words with extract_invoice_data, but its verb is "store"
    assert [s.tools for s in plan.steps] == [("extract_invoice_data",), ("store_invoice",)] and plan.required


def test_the_goals_plan_applies_when_the_request_is_about_it():
    tools = list(desk_registry())
    assert [s.tools for s in make_plan(GOALS, "Can you deal with the ticket from ada@example.org?", tools).steps] \
        == [("fetch_ticket",), ("close_ticket",)]
    assert make_plan(GOALS, "Anything from ada@example.org?", tools, has_documents=True).required
    # a request about none of the procedure's tools, and with no document, gets no goal plan
    assert not make_plan(GOALS, "What's a good name for a cat?", tools)
    # a request that asks for a tool outside the procedure follows the request
    assert [s.tools for s in make_plan(GOALS, "Rate the mood of: I am fine", tools).steps] == [("rate_mood",)]


# ---------------------------------------------------------------------------------------------- the run


async def test_the_goals_steps_run_in_order_although_the_request_names_neither(openai_stub):
    openai_stub.enqueue(json_content({"tool": "fetch_ticket", "arguments": {"reporter": "ada@example.org"}}),
                        json_content({"tool": "close_ticket", "arguments": {"ticket": "7f3e"}}),
                        json_content({"type": "answer", "answer": "Ticket 7f3e is closed."}))
    transcript = await agent(openai_stub).run("Can you deal with the ticket from ada@example.org?")
    assert DESK == {"7f3e": {"state": "closed"}} and final_answer(transcript) == "Ticket 7f3e is closed."
    first, second, third = openai_stub.chat_requests
    assert offered(first) == ["fetch_ticket"]  # the first step only, and no answer before any result
    assert offered(second) == ["close_ticket"]  # the step left: no answer yet
    assert offered(third) == ["answer"]  # every step done


async def test_an_answer_before_a_required_step_is_sent_back_once_then_the_run_fails(openai_stub):
    openai_stub.enqueue(tool_call("fetch_ticket", {"reporter": "ada@example.org"}),
                        text("All done, the ticket is handled."), text("Done, really."))
    transcript = await agent(openai_stub, mode="native").run("Can you deal with the ticket from ada@example.org?")
    assert DESK == {} and not answered(transcript)
    error = transcript[-1]
    assert error.type == "error" and error.code == ErrorCode.NO_ANSWER.value and "close_ticket" in error.content
    reminder = openai_stub.chat_requests[2]["messages"][-1]["content"]
    assert "Not done yet" in reminder and "close_ticket" in reminder
    # native mode is never narrowed: every tool was offered on every round
    assert all(len(r["tools"]) == 4 for r in openai_stub.chat_requests)


async def test_a_reminded_model_can_still_do_the_step(openai_stub):
    openai_stub.enqueue(tool_call("fetch_ticket", {"reporter": "ada@example.org"}), text("Handled."),
                        tool_call("close_ticket", {"ticket": "7f3e"}), text("Closed ticket 7f3e."))
    transcript = await agent(openai_stub, mode="native").run("Please sort out ada@example.org's ticket")
    assert DESK == {"7f3e": {"state": "closed"}} and final_answer(transcript) == "Closed ticket 7f3e."


async def test_no_plan_no_reminder(openai_stub):
    openai_stub.enqueue(text("Call it Biscuit."))
    transcript = await agent(openai_stub, mode="native").run("What's a good name for a cat?")
    assert final_answer(transcript) == "Call it Biscuit." and len(openai_stub.chat_requests) == 1


# ---------------------------------------------------------------------------------------------- answers


def test_stated_reads_values_in_their_common_writings():
    result = json.dumps({"mood": "furious", "confidence": 0.91, "status": "success"})
    assert stated("The message is furious.", result)
    assert stated("Confidence 91%.", result) and stated("confidence 0.91", result)
    assert not stated("The message is processed successfully.", result)  # a status word is no result
    assert not stated("I am so angry at this delay", result, "Rate the mood: I am so angry at this delay")
    assert stated("Nothing to report.", '{"status": "success"}')  # no value to state
    assert echoes("I am so angry at this delay, really, it is the third time", "Rate: I am so angry at this "
                  "delay, really, it is the third time this month")
    assert in_words("close_ticket", '{"message": "Closed ticket 7f3e"}') == "Closed ticket 7f3e."
    assert in_words("rate_mood", result) == "Rate mood: mood: furious; confidence: 0.91; status: success."


async def test_an_echo_is_replaced_by_the_result_and_the_policy_can_switch_it_off(openai_stub):
    review = "Rate the mood of this: I waited three weeks and nobody answered my mails, this is a disgrace."
    echo = json_content({"type": "answer", "answer": review.split(": ", 1)[1]})
    call = json_content({"tool": "rate_mood", "arguments": {"text": review.split(": ", 1)[1]}})
    openai_stub.enqueue(call, echo)
    transcript = await agent(openai_stub, goals=[]).run(review)
    assert final_answer(transcript) == "Rate mood: mood: furious; confidence: 0.91."
    openai_stub.enqueue(call, echo)
    transcript = await agent(openai_stub, goals=[], policy=None).run(review)
    assert final_answer(transcript) == review.split(": ", 1)[1]  # the policy off: the model's words stand


async def test_words_that_miss_the_result_give_way_to_it(openai_stub):
    openai_stub.enqueue(json_content({"tool": "rate_mood", "arguments": {"text": "I am fine"}}),
                        json_content({"type": "answer", "answer": "I rated it"}))
    transcript = await agent(openai_stub, goals=[], policy=SmallModelPolicy()).run("Rate the mood of 'I am fine'")
    assert final_answer(transcript) == "Rate mood: mood: furious; confidence: 0.91."
