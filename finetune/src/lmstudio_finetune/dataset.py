"""Training rows: validation (instruction rows and chat transcripts with tool calls) and the JSONL Axolotl reads.

Every row is written in the chat-template ``messages`` form (Axolotl ``type: chat_template``,
``field_messages: messages``): an instruction row becomes a user turn and an assistant turn.

An assistant's tool calls are trained as text in ``content``: the LFM2 and SmolLM2 templates render only
``content`` (a ``tool_calls`` field would train an empty turn), and the core agent reads calls back from that text
(``lmstudio_agent.model.toolcalls.parse_tool_calls``). Content that already holds the call text (LFM2's
``<|tool_call_start|>[...]`` or JSON, as the core sends it back) is kept as it is; empty content gets the JSON list
``[{"name": ..., "arguments": {...}}]``. ``tool_calls`` itself is not written, so templates that do render it
cannot train the call twice.

Each message always carries the same keys (``role``, ``content``, ``tool_call_id``) and ``tools`` is a JSON string,
so the ``datasets`` loader sees one schema however different the rows' tools are; Axolotl drops null keys and
decodes the JSON again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from lmstudio_agent.errors import AgentError, ErrorCode, validation_problems
from lmstudio_agent.agent.messages import TrainingExample
from lmstudio_agent.model.toolcalls import ToolCall, parse_openai_tool_calls, parse_tool_calls
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ChatMessage",
    "ChatRow",
    "DatasetError",
    "FunctionTool",
    "read_jsonl",
    "to_messages_row",
    "validate_rows",
    "write_jsonl_atomic",
]


class DatasetError(AgentError, ValueError):
    """A training row (or a JSONL line) that cannot be used; ``row`` is its number, counted from 1 like lines.

    Args:
        row: The row's number, counted from 1 (None: the data as a whole).
        problem: What is wrong with it.
        where: What a row is called in the message (``row``, ``line``).
    """

    def __init__(self, row: int | None, problem: str, *, where: str = "row") -> None:
        self.row = row
        self.problem = problem
        prefix = f"{where} {row}: " if row is not None else ""
        super().__init__(ErrorCode.INVALID_REQUEST, prefix + problem, details={"row": row, "problem": problem})


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][\w.-]*$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class FunctionTool(BaseModel):
    """An OpenAI function tool, as the core agent sends it (``ToolRegistry.to_openai_tools()``)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function"] = "function"
    function: FunctionSpec


class ChatMessage(BaseModel):
    """One OpenAI chat message of a transcript. Unknown keys (``refusal``, ``name``...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChatMessage:
        has_text = bool(self.content and self.content.strip())
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role!r}")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"only tool messages carry tool_call_id, not {self.role!r}")
        if self.role == "assistant":
            if not has_text and not self.tool_calls:
                raise ValueError("an assistant message needs content or tool_calls")
            if self.tool_calls:
                _, errors = parse_openai_tool_calls(self.tool_calls)
                if errors:
                    raise ValueError("bad tool call: " + "; ".join(errors))
        elif self.role == "tool":
            if self.content is None:
                raise ValueError("a tool message needs content (the tool's result)")
        elif not has_text:
            raise ValueError(f"a {self.role} message needs non-empty content")
        return self

    def calls(self) -> list[ToolCall]:
        return parse_openai_tool_calls(self.tool_calls or [])[0]


class ChatRow(BaseModel):
    """A chat transcript row: ``{"messages": [...], "tools"?: [...]}`` in OpenAI chat format."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[FunctionTool] | None = None

    @field_validator("messages")
    @classmethod
    def _has_assistant(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(message.role == "assistant" for message in messages):
            raise ValueError("a transcript needs at least one assistant message to learn from")
        return messages

    @model_validator(mode="after")
    def _known_tools(self) -> ChatRow:
        if self.tools is None:
            return self
        known = {tool.function.name for tool in self.tools}
        for index, message in enumerate(self.messages):
            written = parse_tool_calls(message.content).calls if message.role == "assistant" else []
            for call in [*message.calls(), *written]:
                if call.name not in known:
                    raise ValueError(f"messages.{index} calls {call.name!r}, which is not in tools {sorted(known)}")
        return self


def validate_row(row: Any, number: int) -> TrainingExample | ChatRow:
    """One row as a :class:`TrainingExample` or a :class:`ChatRow`, or a :class:`DatasetError` naming it.

    ``number`` is the row's position counted from 1 (the first row is row 1), as the error reports it.
    """
    if not isinstance(row, Mapping):
        raise DatasetError(number, f"expected an object, got {type(row).__name__}")
    if "messages" in row and ("instruction" in row or "response" in row):
        raise DatasetError(number, "a row is either a transcript ('messages') or an instruction row, not both")
    model: type[BaseModel] = ChatRow if "messages" in row else TrainingExample
    try:
        return model.model_validate(dict(row))  # type: ignore[return-value]
    except ValidationError as exc:
        raise DatasetError(number, validation_problems(exc, limit=None)) from None


def validate_rows(rows: Iterable[Any]) -> list[TrainingExample | ChatRow]:
    """Every row validated, in order; the first bad row raises. An empty dataset is an error too."""
    validated = [validate_row(row, number) for number, row in enumerate(rows, start=1)]
    if not validated:
        raise DatasetError(None, "the dataset has no rows")
    return validated


def _message(role: str, content: str, *, tool_call_id: str | None = None) -> dict[str, Any]:
    return {"role": role, "content": content, "tool_call_id": tool_call_id}


def _call_text(calls: list[ToolCall]) -> str:
    # The JSON call list the core's parse_tool_calls reads back (and LFM2 emits when asked for JSON calls).
    return json.dumps([{"name": call.name, "arguments": call.arguments} for call in calls], ensure_ascii=False)


def to_messages_row(example: TrainingExample | ChatRow) -> dict[str, Any]:
    """The JSONL object Axolotl's chat_template loader reads for one validated row."""
    if isinstance(example, TrainingExample):
        prompt = example.instruction if not example.input else f"{example.instruction}\n\n{example.input}"
        return {"messages": [_message("user", prompt), _message("assistant", example.response)], "tools": None}
    messages = []
    for message in example.messages:
        content = message.content or ""
        calls = message.calls()
        if calls and not parse_tool_calls(content).calls:
            content = f"{content.rstrip()}\n{_call_text(calls)}" if content.strip() else _call_text(calls)
        messages.append(_message(message.role, content, tool_call_id=message.tool_call_id))
    tools = [tool.model_dump(exclude_none=True) for tool in example.tools] if example.tools else None
    return {"messages": messages, "tools": json.dumps(tools, ensure_ascii=False) if tools else None}


def write_jsonl_atomic(objects: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """Write JSON lines to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for obj in objects:
                handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_jsonl(path: Path) -> list[Any]:
    """The objects of a JSONL file (blank lines skipped); a line that is not JSON raises, naming the line."""
    return [row for _, row in read_jsonl_numbered(path)]


def read_jsonl_numbered(path: Path) -> list[tuple[int, Any]]:
    """(line number from 1, object) for each non-blank line of a JSONL file, as :func:`read_jsonl` reads it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(None, f"dataset file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(None, f"cannot read dataset {path}: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DatasetError(number, f"not valid JSON ({exc.msg} at column {exc.colno})", where="line") from None
    return rows
