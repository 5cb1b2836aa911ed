"""A chat conversation as one agent run: the bodies chat clients send, read into an :class:`ExecuteRequest`.

Chat clients send the whole conversation on every turn: the AI SDK's ``useChat`` (UI messages with ``parts``)
and every OpenAI client (``messages`` with ``content``). The agent runs one instruction, so a conversation
becomes one:

- the instruction is the **last user message** (its text; for UI messages the text of its ``text`` parts);
  it must be the conversation's last message and hold text, else INVALID_INSTRUCTION;
- the run also sees **the conversation so far**, bounded: the text of at most :data:`HISTORY_MESSAGES`
  earlier user and assistant messages, each cut to :data:`HISTORY_MESSAGE_CHARS` characters, oldest dropped
  first until the whole instruction fits :data:`~lmstudio_agent.endpoint.contract.MAX_INSTRUCTION_CHARS`. They go
  before the request, labelled, so a follow-up ("and in French?") has its referent. Tool parts, files and
  reasoning of earlier turns are not replayed (their outcome is in the assistant's text);
- system messages are not instructions to the agent (its own goals hold); they are left out.

The conversation so far is part of the instruction, so it is part of the cache key: the same question in
another conversation is another entry.

The AI SDK body (``DefaultChatTransport``'s default: ``id``, ``messages``, ``trigger``, ``messageId``) may
carry the contract's own optional fields beside it (``tools``, ``model``, ``documents``, ``stream``), as
``useChat``'s ``body`` option adds them; anything else is a clear 400, as for the strict JSON contract.
"""

from __future__ import annotations

from typing import Any, Literal, Optional
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .contract import MAX_INSTRUCTION_CHARS, ExecuteRequest, execute_request_from
from ..errors import AgentError, ErrorCode, validation_problems

HISTORY_MESSAGES = 8
HISTORY_MESSAGE_CHARS = 2_000
# No count limit on messages or parts: the body limit (64 KiB) bounds them, and a limit the body limit would hit
# first could not be documented truthfully (a list one item too long would be a 413, not the schema's 400).
CURRENT_LABEL = "Current request:"
HISTORY_LABEL = "Conversation so far (for context; answer the current request):"

Turn = tuple[str, str]  # (role, text)


def instruction_from_turns(turns: Sequence[Turn]) -> str:
    """The run's instruction for a conversation (see the module docstring).

    Args:
        turns: The conversation as (role, text) pairs, oldest first; roles other than ``user`` and
            ``assistant`` are left out.
    """
    kept = [(role, text.strip()) for role, text in turns if role in ("user", "assistant")]
    if not kept or kept[-1][0] != "user" or not kept[-1][1]:
        raise AgentError(ErrorCode.INVALID_INSTRUCTION,
                         "The conversation must end with a user message that has text: it is the instruction")
    current = kept[-1][1]
    if len(current) > MAX_INSTRUCTION_CHARS:
        raise AgentError(ErrorCode.INVALID_INSTRUCTION,
                         f"The last user message is longer than {MAX_INSTRUCTION_CHARS} characters")
    earlier = [(role, text if len(text) <= HISTORY_MESSAGE_CHARS else text[:HISTORY_MESSAGE_CHARS] + " …")
               for role, text in kept[:-1] if text][-HISTORY_MESSAGES:]
    while earlier:
        lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in earlier]
        instruction = "\n".join([HISTORY_LABEL, *lines, "", CURRENT_LABEL, current])
        if len(instruction) <= MAX_INSTRUCTION_CHARS:
            return instruction
        earlier = earlier[1:]
    return current


# ------------------------------------------------------------------------------------ the AI SDK's body


class UIMessagePart(BaseModel):
    """One part of a UI message: only ``text`` parts are read; the others (tools, files, data) pass."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=128)
    text: Optional[str] = None


class UIMessage(BaseModel):
    """A message of the AI SDK's ``UIMessage`` shape (``id``, ``role``, ``parts``; ``metadata`` passes)."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str] = Field(default=None, max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePart]

    def text(self) -> str:
        """The message's text: its ``text`` parts joined (other parts carry none)."""
        return "".join(part.text or "" for part in self.parts if part.type == "text")


class ChatRequest(BaseModel):
    """The body ``useChat`` sends by default, with the contract's optional fields beside it."""

    model_config = ConfigDict(extra="forbid")

    id: Optional[str] = Field(default=None, max_length=256, description="The chat's id (not used by the run).")
    messages: list[UIMessage] = Field(min_length=1, description="The conversation as AI SDK UI messages, oldest first.")
    trigger: Optional[Literal["submit-message", "regenerate-message"]] = None
    messageId: Optional[str] = Field(default=None, max_length=256)  # noqa: N815 (the AI SDK's field name)
    tools: Any = None
    model: Any = None
    documents: Any = None
    stream: Any = None


def is_chat_body(data: Any) -> bool:
    """Whether a parsed body is the AI SDK's chat shape (``messages``, no ``instruction``).

    Args:
        data: The parsed JSON body (anything: only a dict can be the chat shape).
    """
    return isinstance(data, dict) and "messages" in data and "instruction" not in data


def execute_request_from_chat(data: dict[str, Any]) -> ExecuteRequest:
    """The :class:`ExecuteRequest` for a ``useChat`` body: the instruction from its conversation, the
    contract's fields as given (validated by the contract's own model); AgentError (400) otherwise.

    Args:
        data: The parsed JSON body (:func:`is_chat_body` is true for it).
    """
    try:
        chat = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise AgentError(ErrorCode.INVALID_REQUEST,
                         "Invalid chat request body: " + validation_problems(exc, root="body")) from None
    instruction = instruction_from_turns([(m.role, m.text()) for m in chat.messages])
    fields = {name: data[name] for name in ("tools", "model", "documents", "stream") if data.get(name) is not None}
    return execute_request_from({"instruction": instruction, **fields})
