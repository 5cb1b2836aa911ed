"""What the loop knows at the start of a round, handed to the mode's strategy instead of re-derived from text.

The loop (:mod:`.agent`) builds one :class:`RoundContext` per round: the request, the run's plan
(:mod:`.plan`), the calls that succeeded and their results, the documents, and whether this is the run's
first or last round. The strategies read it; nothing is written into the conversation to be parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence

from .plan import Plan, make_plan
from .tools import Tool
from .goals import Goal

__all__ = ["RoundContext"]


@dataclass(frozen=True)
class RoundContext:
    """One round's state.

    Args:
        request: The user's request (the run's instruction).
        plan: The steps the run must take.
        succeeded: The tools whose calls succeeded so far, oldest first.
        results: ``(tool name, result text)`` of each successful call, oldest first.
        documents: The run's documents (name -> text).
        first: Whether the model has not replied yet in this run.
        last: Whether this is the run's last round (the tools are withdrawn).
        just_succeeded: Whether the previous round's call succeeded.
    """

    request: str | None = None
    plan: Plan = field(default_factory=Plan)
    succeeded: tuple[str, ...] = ()
    results: tuple[tuple[str, str], ...] = ()
    documents: Mapping[str, str] = field(default_factory=dict)
    first: bool = True
    last: bool = False
    just_succeeded: bool = False

    @classmethod
    def start(cls, request: str | None, tools: Sequence[Tool] = (), goals: Sequence[Goal] = (),
              documents: Mapping[str, str] | None = None) -> RoundContext:
        """The first round of a run for ``request`` with ``tools`` and ``goals``.

        Args:
            request: The user's request.
            tools: The tools the run offers.
            goals: The agent's goals.
            documents: The run's documents.
        """
        documents = dict(documents or {})
        return cls(request=request, plan=make_plan(goals, request, list(tools), has_documents=bool(documents)),
                   documents=documents)

    @property
    def step_pending(self) -> bool:
        """Whether the plan has a step that no call has done yet."""
        return self.plan.next_step(self.succeeded) is not None
