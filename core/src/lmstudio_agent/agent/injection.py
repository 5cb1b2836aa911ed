"""What the runtime gives a tool: the run's :class:`ActionContext`, and which of a function's parameters receive it
(``action_context``, or any parameter annotated :class:`ActionContext`) or the running agent (``action_agent``).

These parameters never appear in a tool's schema, so the model can never supply them.
"""

from __future__ import annotations

import inspect
from typing import Any
from collections.abc import Callable, Mapping

__all__ = ["AGENT_PARAM", "CONTEXT_PARAM", "ActionContext", "injected_params"]

CONTEXT_PARAM = "action_context"
AGENT_PARAM = "action_agent"


class ActionContext:
    """What a tool receives as ``action_context``: free-form properties plus the run's llm, agent and memory.

    Args:
        properties: The run's free-form properties (e.g. ``invoice_storage``).
        llm: The run's :class:`~lmstudio_agent.model.llm.LLM` (the model, bound to the run's deadline).
        agent: The running agent.
        memory: The run's memory (the conversation so far).
    """

    _ATTRIBUTES = ("llm", "agent", "memory")

    def __init__(
        self, properties: Mapping[str, Any] | None = None, *, llm: Any = None, agent: Any = None, memory: Any = None
    ) -> None:
        """Hold the properties and the run's llm, agent and memory (None when there is none)."""
        self.properties: dict[str, Any] = dict(properties or {})
        self.llm = llm
        self.agent = agent
        self.memory = memory

    def get(self, key: str, default: Any = None) -> Any:
        """A property, or ``llm``/``agent``/``memory`` (the notebook's ``action_context.get("llm")``).

        Args:
            key: A property name, or ``llm``, ``agent`` or ``memory``.
            default: What to return when there is no such property (or the attribute is None).
        """
        if key in self.properties:
            return self.properties[key]
        if key in self._ATTRIBUTES:
            value = getattr(self, key)
            return default if value is None else value
        return default

    def __getitem__(self, key: str) -> Any:
        if key in self.properties:
            return self.properties[key]
        if key in self._ATTRIBUTES and getattr(self, key) is not None:
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self.properties or (key in self._ATTRIBUTES and getattr(self, str(key)) is not None)

    def __repr__(self) -> str:
        return f"ActionContext(properties={sorted(self.properties)!r})"


def _is_context_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.strip("'\"").split(".")[-1] == "ActionContext"
    return inspect.isclass(annotation) and issubclass(annotation, ActionContext)


def injected_params(func: Callable[..., Any]) -> dict[str, str]:
    """The parameters of ``func`` the runtime fills: name -> ``"context"`` (the :class:`ActionContext`) or
    ``"agent"`` (the running agent); empty when ``func`` has no readable signature.

    Args:
        func: The tool's function.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return {}
    injected: dict[str, str] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if _is_context_annotation(param.annotation) or name == CONTEXT_PARAM:
            injected[name] = "context"
        elif name == AGENT_PARAM:
            injected[name] = "agent"
    return injected
