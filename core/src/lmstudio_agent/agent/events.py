"""The events of a run as it happens: what :meth:`Agent.astream` yields, what an agent sends the hub in
``task:event`` frames, and what the HTTP stream (:mod:`.streaming`) is made from.

- ``step-start``: a model round begins (``step`` counts from 0);
- ``text-delta``: a piece of the text the model is writing (``delta``), streamed where the mode allows;
- ``message``: one :class:`AgentMessage` of the transcript (thought, action, result, error), as the run emits it.

The transcript of a run is exactly its ``message`` events, in order.
"""

from __future__ import annotations

from typing import Any, Literal, Optional
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .messages import AgentMessage

MAX_DELTA_CHARS = 16_000


class RunEvent(BaseModel):
    """One event of a run (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["step-start", "text-delta", "message"]
    step: Optional[int] = Field(default=None, ge=0, le=1000)
    delta: Optional[str] = Field(default=None, max_length=MAX_DELTA_CHARS)
    message: Optional[AgentMessage] = None

    @model_validator(mode="after")
    def _shape(self) -> RunEvent:
        needs = {"step-start": "step", "text-delta": "delta", "message": "message"}[self.type]
        if getattr(self, needs) is None:
            raise ValueError(f"a {self.type!r} event needs {needs!r}")
        return self

    @classmethod
    def step_start(cls, step: int) -> RunEvent:
        """A ``step-start`` event: round ``step`` begins.

        Args:
            step: The round's number, from 0.
        """
        return cls(type="step-start", step=step)

    @classmethod
    def text(cls, delta: str) -> RunEvent:
        """A ``text-delta`` event: more of the model's text, as it streams.

        Args:
            delta: The new text.
        """
        return cls(type="text-delta", delta=delta)

    @classmethod
    def of(cls, message: AgentMessage) -> RunEvent:
        """A ``message`` event carrying a transcript message.

        Args:
            message: The transcript message.
        """
        return cls(type="message", message=message)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, without its unset fields."""
        return self.model_dump(mode="json", exclude_none=True)


def transcript_of(events: Iterable[RunEvent]) -> list[AgentMessage]:
    """The transcript (the ``message`` events' messages, in order).

    Args:
        events: A run's events, in order.
    """
    return [event.message for event in events if event.type == "message" and event.message is not None]


def events_from_transcript(transcript: Iterable[AgentMessage]) -> list[RunEvent]:
    """Events for a transcript that was recorded without them (an old cache entry, an agent that sends no
    ``task:event`` frames): a new step starts at each thought, and at an action or a message of no tool that
    follows a result or an error (the model was asked again).

    Args:
        transcript: The transcript's messages, in order.
    """
    events: list[RunEvent] = []
    step = -1
    previous: AgentMessage | None = None
    for message in transcript:
        new_step = step < 0 or message.type == "thought" or (
            previous is not None and previous.type in ("result", "error")
            and (message.type == "action" or message.tool is None)
        )
        if new_step:
            step += 1
            events.append(RunEvent.step_start(step))
        events.append(RunEvent.of(message))
        previous = message
    return events
