"""The project's suite: its shape, its splits, and that the committed files are what the generator makes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_eval.phrasings import PHRASINGS
from lmstudio_eval.suite import (
    Task,
    builtin_suite_path,
    generate_tasks,
    load_suite,
    tools_for,
    write_suite,
)
from lmstudio_eval.suite_tools import SUITE_BUILTINS, suite_registry

REGISTRY = suite_registry()
HELDOUT = load_suite(builtin_suite_path("heldout"))
TRAIN = load_suite(builtin_suite_path("train"))


def test_the_held_out_split_has_150_tasks_over_15_tools_with_the_builtins():
    assert len(HELDOUT) >= 150
    tools = Counter(task.expected.name for task in HELDOUT)
    assert len(tools) >= 15
    assert set(SUITE_BUILTINS) <= set(tools)
    assert min(tools.values()) >= 5  # every tool is measured on several tasks


@pytest.mark.parametrize("tasks", [HELDOUT, TRAIN], ids=["heldout", "train"])
def test_each_task_offers_two_to_five_distinct_tools_and_one_right_call(tasks):
    for task in tasks:
        names = task.tool_names
        assert 2 <= len(names) <= 5 and len(set(names)) == len(names)
        assert names.count(task.expected.name) == 1
        # the expected call is valid for its tool: a wrong "expected" would make the figures wrong
        REGISTRY.get(task.expected.name).validate_arguments(task.expected.arguments)


def test_the_suite_uses_enums_numbers_and_leaves_optional_arguments_out():
    kinds = Counter()
    for task in HELDOUT:
        parameters = REGISTRY.get(task.expected.name).parameters
        for name, spec in parameters["properties"].items():
            if name not in task.expected.arguments and name not in parameters.get("required", []):
                kinds["optional omitted"] += 1
            elif name in task.expected.arguments:
                value = task.expected.arguments[name]
                kinds["enum" if "enum" in spec else type(value).__name__] += 1
    assert kinds["enum"] >= 20 and kinds["optional omitted"] >= 20
    assert kinds["int"] + kinds["float"] >= 20


def test_training_never_sees_a_held_out_instruction_or_template():
    assert not {t.instruction for t in HELDOUT} & {t.instruction for t in TRAIN}
    for phrasing in PHRASINGS:
        assert not set(phrasing.train) & set(phrasing.heldout), phrasing.tool


def test_the_suite_tools_are_the_registry_tools():
    for task in HELDOUT[:40]:
        for spec, tool in zip(task.tools, tools_for(task, REGISTRY)):
            assert tool is REGISTRY.get(spec["function"]["name"])
            assert spec == tool.to_openai()


def test_the_committed_files_are_what_the_generator_writes(tmp_path):
    for split in ("train", "heldout"):
        fresh = write_suite(generate_tasks(split), tmp_path / f"{split}.jsonl")
        assert fresh.read_text() == builtin_suite_path(split).read_text(), (
            f"regenerate with: python -m lmstudio_eval.suite ({split} differs)")


def test_a_tool_unknown_to_the_registry_is_built_from_the_suite_object():
    spec = {"type": "function", "function": {"name": "lookup_order", "description": "Find an order.",
                                             "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                                                            "required": ["order_id"]}}}
    task = Task(id="x", tools=[spec], instruction="Where is order 7?",
                expected={"name": "lookup_order", "arguments": {"order_id": "7"}})
    (tool,) = tools_for(task, REGISTRY)
    assert tool.name == "lookup_order" and tool.parameters == spec["function"]["parameters"]
    assert tool.validate_arguments({"order_id": "7"}) == {"order_id": "7"}


def _write(tmp_path, *lines):
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loading_reports_the_bad_line_and_why(tmp_path):
    good = HELDOUT[0].to_json()
    with pytest.raises(AgentError) as bad_json:
        load_suite(_write(tmp_path, good, "{not json"))
    assert bad_json.value.code is ErrorCode.INVALID_INSTRUCTION and ":2:" in bad_json.value.message

    not_offered = json.loads(good)
    not_offered["expected"]["name"] = "nowhere"
    with pytest.raises(AgentError, match="not among the offered tools"):
        load_suite(_write(tmp_path, json.dumps(not_offered)))

    with pytest.raises(AgentError, match="duplicate task id"):
        load_suite(_write(tmp_path, good, good))

    with pytest.raises(AgentError, match="no tasks"):
        load_suite(_write(tmp_path, ""))

    with pytest.raises(AgentError, match="Cannot read"):
        load_suite(tmp_path / "missing.jsonl")
