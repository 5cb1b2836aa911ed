"""The API reference's types: AgentMessage, TrainingExample, WebSocketMessage (as pydantic models)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

MessageType = Literal["thought", "action", "result", "error"]


class AgentMessage(BaseModel):
    """One event of an agent run.

    ``thought``: text the model wrote beside its calls; ``action``: a tool call (``tool``, ``args``);
    ``result``: a tool's output (``tool`` set) or the final answer (``tool`` unset); ``error``: a failure
    the run recovered from or ended on, with its ``code``.
    """

    model_config = ConfigDict(extra="forbid")

    type: MessageType
    content: Optional[str] = None
    tool: Optional[str] = None
    args: Optional[dict[str, Any]] = None
    code: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form: unset fields are left out, as in the API reference's examples."""
        return self.model_dump(mode="json", exclude_none=True)


class TrainingExample(BaseModel):
    """One instruction/response pair for fine-tuning."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    instruction: str = Field(min_length=1)
    input: Optional[str] = None
    response: str = Field(min_length=1)


class WebSocketMessage(BaseModel):
    """A frame of the AI Bridge protocol: ``{"type": ..., "data": {...}, "metadata": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1)
    # A JSON object; each frame of the bridge protocol narrows it to its own model (lmstudio_agent.bridge.protocol).
    data: Union[dict[str, Any], BaseModel] = Field(default_factory=dict)
    metadata: Optional[dict[str, Any]] = None


def answered(transcript: list[AgentMessage]) -> bool:
    """True when the run ended with a final answer (a ``result`` with no tool, with content).

    A run that ended without one (its last event is an ``error``, e.g. NO_ANSWER when the rounds ran out or
    every tool call failed) is not a success: the endpoints answer ``success: false`` and never cache it.

    Args:
        transcript: A run's transcript, in order.
    """
    if not transcript:
        return False
    last = transcript[-1]
    return last.type == "result" and last.tool is None and bool((last.content or "").strip())


def final_answer(transcript: list[AgentMessage]) -> str | None:
    """The content of the last final ``result`` (one with no tool) of a transcript, if any.

    Args:
        transcript: A run's transcript, in order.
    """
    for message in reversed(transcript):
        if message.type == "result" and message.tool is None:
            return message.content
    return None
