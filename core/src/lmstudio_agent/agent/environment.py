"""The Environment of the notebook's GAME design: it runs a tool the loop validated and turns its failure into a
message for the model (:class:`ToolOutcome`); :func:`render_result` is a result as the model reads it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..errors import AgentError, ErrorCode
from .injection import ActionContext
from .tools import Tool

__all__ = ["MAX_RESULT_CHARS", "Environment", "ToolOutcome", "render_result"]

# The loop's logger, as before the Environment had a module of its own: its records keep their name.
logger = logging.getLogger("lmstudio_agent.agent.loop")

MAX_RESULT_CHARS = 4000


def render_result(result: Any) -> str:
    """A tool result as text for the model, cut to a size small models can take.

    Args:
        result: What the tool returned: a string as it is, anything else as JSON.
    """
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …[truncated]"



@dataclass
class ToolOutcome:
    """What running one tool gave: a result, or an error message for the model (the traceback stays here)."""

    ok: bool
    result: Any = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    timestamp: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def for_model(self) -> str:
        """The outcome as the model sees it: the rendered result, or ``Error: ...`` with the message (never the
        traceback).
        """
        if self.ok:
            return render_result(self.result)
        return f"Error: {self.error}"


class Environment:
    """Runs tools and captures their failures. The traceback is logged, never shown to the model or a client."""

    async def execute(self, tool: Tool, args: dict[str, Any], context: ActionContext) -> ToolOutcome:
        """Run ``tool`` with ``args``, the keyword arguments :meth:`Agent.check <lmstudio_agent.agent.loop.Agent.check>` validated (not checked again).

        Args:
            tool: The tool to run.
            args: Its keyword arguments, already validated.
            context: What the tool receives as ``action_context`` (properties, llm, agent, memory).
        """
        try:
            return ToolOutcome(ok=True, result=await tool.run(args, context))
        except AgentError as exc:
            if exc.code in (ErrorCode.UPSTREAM_TIMEOUT, ErrorCode.CONNECTION_FAILED):
                raise  # the model server itself failed inside a tool: the run cannot go on
            return ToolOutcome(ok=False, error=exc.message)
        except Exception as exc:  # a user tool may raise anything: it becomes a message, not a crash
            tb = traceback.format_exc()
            logger.info("tool %s raised %s", tool.name, type(exc).__name__)
            logger.debug("traceback of tool %s:\n%s", tool.name, tb)
            return ToolOutcome(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=tb)
