"""lmstudio_agent: tool-using agents on small local models served by LM Studio (or any OpenAI-compatible server).

Async first (it runs inside Cloudflare Python Workers too); ``LMStudioAgent`` adds the API reference's sync
methods. Runtime dependencies: pydantic and httpx.

"The API reference" and "the notebook" in these docstrings are the two documents the project implements, in the
repository's docs/reference/ (api-reference.md, agent-notebook.md).
"""

from .agent.loop import Agent, Environment, Goal, Memory, terminate
from .model.client import ChatClient, ChatResponse
from .deadline import Deadline
from .errors import AgentError, BridgeConnectionError, ErrorCode
from .agent.events import RunEvent
from .model.llm import LLM, prompt_llm_for_json
from .lmstudio import LMStudioAgent
from .agent.messages import AgentMessage, TrainingExample, WebSocketMessage
from .model.modes import ToolMode
from .model.policy import SmallModelPolicy
from .agent.tools import ActionContext, Tool, ToolRegistry, default_registry, register_tool, tool_from_function

__version__ = "0.1.0"

__all__ = [
    "ActionContext", "Agent", "AgentError", "AgentMessage", "BridgeConnectionError", "ChatClient", "ChatResponse",
    "Deadline", "Environment", "ErrorCode", "Goal", "LLM", "LMStudioAgent", "Memory", "RunEvent", "SmallModelPolicy", "Tool",
    "ToolMode",
    "ToolRegistry", "TrainingExample", "WebSocketMessage", "default_registry", "prompt_llm_for_json",
    "register_tool", "terminate", "tool_from_function",
]
