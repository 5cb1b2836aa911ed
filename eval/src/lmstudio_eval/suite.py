"""The suite format (JSONL, one task a line), loading and checking it, and generating the project's own suite.

A task::

    {"id": "...", "tools": [OpenAI function-tool objects], "instruction": "...",
     "expected": {"name": "...", "arguments": {...}}}

Optional: ``kind`` (``call``, the default; ``no_call``: no offered tool fits, the right reply is words and no
call, and there is no ``expected``; ``two_step``: ``expected_calls`` holds the two calls, the second needing
the first one's result), ``expected_calls`` (``expected`` is the first of them), ``results`` (what each
expected call returns, fed back to the model in order) and ``answer`` (a final answer in words, for training).
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from collections.abc import Iterable

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from lmstudio_agent.errors import AgentError, ErrorCode, validation_problems
from lmstudio_agent.agent.tools import Tool, ToolRegistry
from .phrasings import PHRASINGS, Phrasing
from .suite_tools import suite_registry

Split = Literal["train", "heldout"]
TaskKind = Literal["call", "no_call", "two_step"]
SPLITS: tuple[Split, ...] = ("train", "heldout")
SUITE_FILES = {"train": "tool_suite_train.jsonl", "heldout": "tool_suite_heldout.jsonl"}
TASKS_PER_TOOL = {"train": 30, "heldout": 6}
SEEDS = {"train": 20250101, "heldout": 20250202}


class ExpectedCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    """One suite task: the tools offered, the user's instruction, the call that is right."""

    id: str = Field(min_length=1)
    tools: list[dict[str, Any]] = Field(min_length=1)
    instruction: str = Field(min_length=1)
    kind: TaskKind = "call"
    expected: ExpectedCall | None = None
    expected_calls: list[ExpectedCall] | None = None
    results: list[str] | None = None
    answer: str | None = None

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
                raise ValueError('each tool must be {"type": "function", "function": {"name": ..., ...}}')
        return tools

    @model_validator(mode="after")
    def _expected_is_offered(self) -> Task:
        if self.kind == "no_call":
            if self.expected is not None or self.expected_calls:
                raise ValueError("a no_call task has no expected call")
            return self
        if self.expected is None:
            raise ValueError("expected: Field required")
        if self.kind == "two_step":
            if not self.expected_calls or len(self.expected_calls) < 2:
                raise ValueError("a two_step task needs two expected_calls")
            if not self.results:
                raise ValueError("a two_step task needs the first call's result in results")
        for call in self.expected_calls or [self.expected]:
            if call.name not in self.tool_names:
                raise ValueError(f"expected tool '{call.name}' is not among the offered tools")
        if self.expected.name not in self.tool_names:
            raise ValueError(f"expected tool '{self.expected.name}' is not among the offered tools")
        if self.expected_calls and self.expected_calls[0] != self.expected:
            raise ValueError("expected must be the first of expected_calls")
        return self

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]

    def to_json(self, compact: bool = False) -> str:
        data = self.model_dump(exclude_none=True)
        if data.get("kind") == "call":
            del data["kind"]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":") if compact else None)


def load_suite(path: str | Path) -> list[Task]:
    """Tasks from a JSONL file; a bad line raises AgentError(INVALID_INSTRUCTION) naming the line and why."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AgentError(ErrorCode.INVALID_INSTRUCTION, f"Cannot read the suite {path}: {exc.strerror}") from None
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            task = Task.model_validate_json(line)
        except ValidationError as exc:
            raise AgentError(ErrorCode.INVALID_INSTRUCTION,
                             f"{path}:{number}: {validation_problems(exc, root='line', limit=1)}") from None
        if task.id in seen:
            raise AgentError(ErrorCode.INVALID_INSTRUCTION, f"{path}:{number}: duplicate task id '{task.id}'")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise AgentError(ErrorCode.INVALID_INSTRUCTION, f"The suite {path} has no tasks")
    return tasks


def builtin_suite_path(split: Split = "heldout") -> Path:
    """The project's own suite file for ``split`` (package data)."""
    return Path(str(resources.files("lmstudio_eval") / "data" / SUITE_FILES[split]))


def tools_for(task: Task, registry: ToolRegistry | None = None) -> list[Tool]:
    """The task's tools as :class:`Tool` objects: the registry's tool where the name and schema match it,
    else a tool built from the suite's own object (its function is never called by the harness)."""
    registry = registry if registry is not None else suite_registry()
    tools = []
    for spec in task.tools:
        function = spec["function"]
        known = registry.get(function["name"])
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if known is not None and known.parameters == parameters:
            tools.append(known)
        else:
            tools.append(Tool(name=function["name"], description=function.get("description") or "",
                              parameters=parameters, function=_not_run))
    return tools


def _not_run(**_: Any) -> Any:
    raise AgentError(ErrorCode.TOOL_EXECUTION_FAILED, "This tool comes from a suite file and has no implementation")


# ---------------------------------------------------------------------------------------------- generation


def generate_tasks(split: Split, *, registry: ToolRegistry | None = None, per_tool: int | None = None,
                   seed: int | None = None, phrasings: Iterable[Phrasing] = PHRASINGS) -> list[Task]:
    """The project's suite for ``split``: for each tool, ``per_tool`` tasks cycling through its templates,
    each offering the right tool and 1-4 others (2-5 in all), in random order."""
    registry = registry if registry is not None else suite_registry()
    per_tool = per_tool if per_tool is not None else TASKS_PER_TOOL[split]
    rng = random.Random(SEEDS[split] if seed is None else seed)
    names = registry.names()
    by_name = {tool.name: tool for tool in registry}
    tasks: list[Task] = []
    seen: set[str] = set()
    for phrasing in phrasings:
        tool = registry.get(phrasing.tool)
        if tool is None:
            raise ValueError(f"no tool '{phrasing.tool}' in the registry")
        templates = phrasing.templates(split)
        for index in range(per_tool):
            for _ in range(50):  # a small held-out pool can repeat a draw: look for an unseen instruction
                instruction, arguments = phrasing.render(templates[index % len(templates)], rng, split)
                if instruction not in seen:
                    break
            seen.add(instruction)
            tool.validate_arguments(arguments)  # a generator bug must not become a wrong "expected"
            others = rng.sample([n for n in names if n != tool.name], rng.randint(1, 4))
            offered = [tool.name, *others]
            rng.shuffle(offered)
            tasks.append(Task(
                id=f"{split}-{tool.name}-{index:03d}",
                tools=[by_name[name].to_openai() for name in offered],
                instruction=instruction,
                expected=ExpectedCall(name=tool.name, arguments=arguments),
            ))
    return tasks


def write_suite(tasks: Iterable[Task], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(task.to_json() + "\n" for task in tasks), encoding="utf-8")
    return path


def main() -> None:
    """Regenerate the package's suite files (``python -m lmstudio_eval.suite``)."""
    for split in SPLITS:
        path = write_suite(generate_tasks(split), builtin_suite_path(split))
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
