"""The Goals of the notebook's GAME design: the goal and persona lines an agent's system prompt starts with, and from
which a run's plan reads the steps it must take (:mod:`.plan`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Goal"]


@dataclass(frozen=True)
class Goal:
    """A goal or persona line of the system prompt."""

    name: str
    description: str
    priority: int = 0
