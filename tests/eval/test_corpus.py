"""The tool corpus (issue 12, section 4): hundreds of generated tools, split by tool, with every parameter kind,
values written the ways people write them, no-call and two-step tasks; and how the harness scores and trains them."""

from __future__ import annotations

import json
import re

import pytest

from lmstudio_agent.model import smallmodel
from lmstudio_agent.model.client import ChatClient
from lmstudio_eval.corpus import (
    GENERATOR_VERSION, all_tools, corpus_path, generate_corpus, split_tools, unseen_groups,
)
from lmstudio_eval.corpus_values import COUNTRIES, CURRENCIES, STATES
from lmstudio_eval.report import summarize
from lmstudio_eval.runner import run_task
from lmstudio_eval.suite import Task, load_suite, tools_for
from lmstudio_eval.finetuning.data import answer_content, task_rows
from lmstudio_agent.model.modes import ConstrainedStrategy
from lmstudio_agent.model.toolcalls import ToolCall, parse_tool_calls
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import MODEL_ID, json_content, text

TRAIN = load_suite(corpus_path("train"))
UNSEEN = load_suite(corpus_path("unseen"))
EMPTY = ToolRegistry()


def expected_calls(task: Task) -> list:
    return task.expected_calls or ([task.expected] if task.expected else [])


def test_the_committed_files_are_what_the_generator_writes():
    assert GENERATOR_VERSION
    for split, tasks in (("train", TRAIN), ("unseen", UNSEEN)):
        assert [t.to_json(compact=True) for t in generate_corpus(split)] == [t.to_json(compact=True) for t in tasks]


def test_hundreds_of_tools_and_the_unseen_split_never_occurs_in_training():
    tools = all_tools()
    assert len({t.name for t in tools}) >= 300
    assert len({t.domain for t in tools}) >= 15
    unseen = {t.name for t in split_tools("unseen")}
    assert len(unseen) >= 60 and len(UNSEEN) >= 300
    in_training = {tool["function"]["name"] for task in TRAIN for tool in task.tools}
    assert not unseen & in_training
    assert {c.name for task in UNSEEN for c in expected_calls(task)} == unseen  # every unseen tool is measured
    assert unseen_groups() == unseen_groups()  # deterministic


def _kinds(schema: dict, found: set[str]) -> None:
    kind = schema.get("type")
    if "enum" in schema:
        found.add("enum")
    if schema.get("format"):
        found.add(f"format:{schema['format']}")
    if "default" in schema:
        found.add("default")
    if kind == "object" and schema.get("properties"):
        found.add("nested object")
    if isinstance(kind, str):
        found.add(kind)
    for child in (schema.get("properties") or {}).values():
        _kinds(child, found)
    if isinstance(schema.get("items"), dict):
        _kinds(schema["items"], found)


@pytest.mark.parametrize("split", ["train", "unseen"])
def test_every_parameter_kind_occurs_in_each_split(split):
    found: set[str] = set()
    for tool in split_tools(split):
        for spec in tool.spec["function"]["parameters"]["properties"].values():
            _kinds(spec, found)
    assert {"string", "enum", "integer", "number", "boolean", "array", "nested object", "default",
            "format:date", "format:time", "format:date-time"} <= found


@pytest.mark.parametrize("tasks", [TRAIN, UNSEEN], ids=["train", "unseen"])
def test_task_mix_offers_and_near_miss_distractors(tasks):
    kinds = [t.kind for t in tasks]
    assert 0.15 <= kinds.count("no_call") / len(tasks) <= 0.20
    assert kinds.count("two_step") / len(tasks) >= 0.1
    assert all(2 <= len(t.tools) <= 8 for t in tasks if t.kind != "no_call")
    assert all(len(set(t.tool_names)) == len(t.tool_names) for t in tasks)
    # most one-call tasks on an entity's tool also offer another tool of that entity (a near miss)
    groups = {tool.name: tool.group for tool in all_tools()}
    calls = [t for t in tasks if t.kind == "call" and t.expected.name.split("_")[0] in
             {"cancel", "search", "get", "update", "book", "create"}]
    near = [t for t in calls if sum(groups[n] == groups[t.expected.name] for n in t.tool_names) >= 2]
    assert len(near) / len(calls) > 0.8
    assert len({t.instruction for t in tasks if t.kind == "call"}) == len([t for t in tasks if t.kind == "call"])


@pytest.mark.parametrize("tasks", [TRAIN, UNSEEN], ids=["train", "unseen"])
def test_each_expected_call_validates_and_no_call_tasks_expect_words(tasks):
    for task in tasks:
        tools = {t.name: t for t in tools_for(task, EMPTY)}
        for call in expected_calls(task):
            tools[call.name].validate_arguments(call.arguments)
        if task.kind == "no_call":
            assert task.expected is None and task.answer
        if task.kind == "two_step":
            first, second = task.expected_calls
            assert json.dumps(next(iter(second.arguments.values()))) in task.results[0]  # the id comes from the result


def test_values_are_written_the_ways_people_write_them():
    tasks = [t for t in TRAIN + UNSEEN if t.expected]
    pairs = [(t.instruction, a) for t in tasks for c in expected_calls(t) for a in c.arguments.items()]

    def some(predicate) -> bool:
        return any(predicate(instruction, name, value) for instruction, (name, value) in pairs)

    assert some(lambda i, n, v: isinstance(v, (int, float)) and re.search(rf"\b{v:g}kg\b", i))  # "70kg"
    assert some(lambda i, n, v: isinstance(v, int) and v >= 1000 and f"{v:,}" in i)  # "2,000,000"
    assert some(lambda i, n, v: isinstance(v, float) and v < 1 and f"{v * 100:g}%" in i)  # "8%" -> 0.08
    assert some(lambda i, n, v: v == 3 and re.search(r"\bthree\b", i))
    assert some(lambda i, n, v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", v)
                and re.search(r"(January|February|March|April|May|June|July|August|September|October|November|December) \d", i))
    assert some(lambda i, n, v: isinstance(v, str) and v in CURRENCIES and any(name in i for name in CURRENCIES[v] if name != v))  # "US dollars"
    assert some(lambda i, n, v: isinstance(v, str) and v in STATES and STATES[v] in i)  # "California" -> "CA"
    assert some(lambda i, n, v: isinstance(v, str) and n != "language" and v in COUNTRIES and COUNTRIES[v] in i)
    assert some(lambda i, n, v: v == "Buenos Aires" and "Buenos Aires" in i)
    assert some(lambda i, n, v: n == "initial_velocity" and v == 0 and "from rest" in i)  # implied
    assert some(lambda i, n, v: isinstance(v, list) and " and " in i)
    assert some(lambda i, n, v: isinstance(v, dict) and v.get("city", "") in i)


def test_training_rows_are_the_agents_messages_with_calls_results_and_answers():
    strategy = ConstrainedStrategy()
    two_step = next(t for t in TRAIN if t.kind == "two_step")
    negative = next(t for t in TRAIN if t.kind == "no_call")
    rows = task_rows([two_step, negative], finish_every=0)
    messages = rows[0]["messages"]
    tools = {t.name: t for t in tools_for(two_step)}
    first, second = two_step.expected_calls
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == smallmodel.format_call(tools[first.name], first.arguments)
    assert messages[3] == strategy.result_message(ToolCall(name=first.name, arguments=first.arguments), two_step.results[0])
    assert messages[4]["content"] == smallmodel.format_call(tools[second.name], second.arguments)
    assert messages[6]["content"] == answer_content(two_step.answer)
    (call,) = parse_tool_calls(messages[4]["content"]).calls
    assert (call.name, call.arguments) == (second.name, second.arguments)
    assert [m["role"] for m in rows[1]["messages"]] == ["system", "user", "assistant"]
    assert rows[1]["messages"][-1]["content"] == answer_content(negative.answer)


async def test_restraint_and_two_step_success_are_scored(openai_stub):
    negative = next(t for t in UNSEEN if t.kind == "no_call")
    two_step = next(t for t in UNSEEN if t.kind == "two_step")
    first, second = two_step.expected_calls
    offered = next(name for name in negative.tool_names)
    openai_stub.enqueue(
        text("Sorry, none of my tools can do that."),  # no call: restraint
        json_content({"name": offered, "arguments": {}}),  # a call: no restraint
        json_content({"name": first.name, "arguments": first.arguments}),
        json_content({"name": second.name, "arguments": second.arguments}),
        json_content({"name": first.name, "arguments": first.arguments}),
        json_content({"name": first.name, "arguments": first.arguments}),  # the second call is wrong
    )
    async with ChatClient(openai_stub.base_url, None, MODEL_ID, max_retries=0) as client:
        held = await run_task(client, negative, "constrained")
        called = await run_task(client, negative, "constrained")
        right = await run_task(client, two_step, "constrained")
        wrong = await run_task(client, two_step, "constrained")
    assert held.restrained and not called.restrained and called.called == offered
    assert right.exact and right.two_step_ok and len(right.call_latencies) == 2
    assert wrong.exact and not wrong.two_step_ok and wrong.second_called == first.name
    # the second round carries the first call and its result, as the agent's loop sends them
    second_request = openai_stub.chat_requests[3]["messages"]
    assert second_request[-1] == ConstrainedStrategy().result_message(ToolCall(first.name, first.arguments),
                                                                     two_step.results[0])
    summary = summarize([held, called, right, wrong])
    assert summary["restraint"] == 0.5 and summary["two_step_success"] == 0.5
    assert summary["call_tasks"] == 2 and summary["exact_accuracy"] == 1.0


def test_no_measured_request_is_trained_on():
    from lmstudio_eval.suite import builtin_suite_path

    trained = {t.instruction for t in TRAIN} | {t.instruction for t in load_suite(builtin_suite_path("train"))}
    assert not trained & {t.instruction for t in UNSEEN}
    assert not trained & {t.instruction for t in load_suite(builtin_suite_path("heldout"))}
