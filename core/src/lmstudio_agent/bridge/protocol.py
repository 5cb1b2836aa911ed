"""The AI Bridge wire protocol: one pydantic model per message type, and the frame parser.

Every frame is a :class:`~lmstudio_agent.agent.messages.WebSocketMessage` (``{"type", "data", "metadata"}``) carried
as a JSON text frame. The API reference's messages are kept exactly (``agent:register``,
``registration:success``, ``task:execute``, ``task:result``); the few a working hub needs are added and
documented in docs/readme/bridge.md: ``registration:error`` (and the optional ``max_message_bytes`` of
``registration:success``), ``task:cancel``, ``heartbeat`` /
``heartbeat:ack`` and ``error``, plus the optional ``tools``, ``side_effect_tools`` and ``max_concurrency``
of ``agent:register``, the optional ``documents`` of ``task:execute`` and the optional ``code`` of an error
``task:result``. For streamed runs the hub sets ``stream: true`` on ``task:execute`` and the agent sends its
run's events as ``task:event`` frames (each one :class:`~lmstudio_agent.agent.events.RunEvent`) before the
``task:result``.

The OpenAI-compatible pass-through (``POST /v1/chat/completions`` for a model behind the hub) adds three
frames, used only with an agent that registered the :data:`CHAT_FORWARD` capability: ``chat:forward`` (hub to
agent: the chat-completions body, sent to the agent's model server as it is), then from the agent, for a
stream, one ``chat:chunk`` per Server-Sent Event (its ``data``), and last ``chat:result`` (the answer's JSON,
or the error with its code).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..agent.documents import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS
from ..agent.documents import NAME_PATTERN as DOCUMENT_NAME_PATTERN
from ..errors import AgentError, ErrorCode, validation_problems
from ..jsonsafe import loads as safe_loads
from ..agent.events import RunEvent
from ..agent.messages import AgentMessage, WebSocketMessage
from . import DEFAULT_BRIDGE_PORT as DEFAULT_BRIDGE_PORT  # re-exported: the hub and the client name them here
from . import DEFAULT_BRIDGE_URL as DEFAULT_BRIDGE_URL

# Frames above this get an error frame and are dropped; the connection stays up. The WebSocket layer's own
# hard limit (HARD_LIMIT_FACTOR times this) closes a connection that sends more, so memory stays bounded.
MAX_FRAME_BYTES = 1024 * 1024
HARD_LIMIT_FACTOR = 4
MAX_ID_CHARS = 128
MAX_TOOLS = 256
# The capability an agent registers when it passes OpenAI chat-completions requests to its model server.
CHAT_FORWARD = "chat:forward"

# The codes an agent may report for a failed task. Anything else (an auth or hub code, or a code this
# version does not know) reaches the client as UPSTREAM_ERROR, so an agent cannot impersonate the hub.
AGENT_CODES = frozenset(
    {
        ErrorCode.MODEL_NOT_LOADED,
        ErrorCode.CONNECTION_FAILED,
        ErrorCode.INVALID_INSTRUCTION,
        ErrorCode.TOOL_EXECUTION_FAILED,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.UNKNOWN_TOOL,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.UPSTREAM_TIMEOUT,
        ErrorCode.UPSTREAM_ERROR,
        ErrorCode.MODEL_OUTPUT_INVALID,
        ErrorCode.NO_ANSWER,
        ErrorCode.INTERNAL_ERROR,
    }
)

_Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
_Name = Annotated[str, Field(min_length=1, max_length=64)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------- payloads


class RegisterData(_Data):
    """``agent:register``: who the agent is and what it can run."""

    agent_id: _Id
    capabilities: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)
    model: Annotated[str, Field(min_length=1, max_length=256)]
    tools: list[_Name] = Field(default_factory=list, max_length=MAX_TOOLS, description="Tools the agent runs.")
    side_effect_tools: list[_Name] = Field(
        default_factory=list, max_length=MAX_TOOLS, description="Which of ``tools`` have side effects (never cached)."
    )
    max_concurrency: int = Field(default=1, ge=1, le=1024, description="Tasks the agent runs at once.")

    @model_validator(mode="after")
    def _side_effects_are_tools(self) -> RegisterData:
        stray = sorted(set(self.side_effect_tools) - set(self.tools))
        if stray:
            raise ValueError(f"side_effect_tools must be among tools; not in tools: {', '.join(stray)}")
        return self


class RegistrationSuccessData(_Data):
    """``registration:success``; ``max_message_bytes`` (optional): the largest message this hub accepts, when
    it is smaller than the protocol's frame limit (API Gateway: 128 KB), so the agent refuses a larger result
    itself with PAYLOAD_TOO_LARGE instead of losing its connection."""

    agent_id: _Id
    max_message_bytes: Optional[int] = Field(default=None, ge=1024)


class RegistrationErrorData(_Data):
    """``registration:error``: why an ``agent:register`` was refused (``agent_id`` None when it was unreadable)."""

    agent_id: Optional[str] = None
    error: str
    code: ErrorCode


class TaskExecuteData(_Data):
    """``task:execute``: ``tools`` empty means every tool the agent registered; ``documents`` (optional, left
    out when there are none) are the request's long inputs, which tool calls pass by reference."""

    task_id: _Id
    instruction: str = Field(min_length=1)
    tools: list[_Name] = Field(default_factory=list, max_length=MAX_TOOLS)
    documents: Optional[
        Annotated[dict[Annotated[str, Field(pattern=DOCUMENT_NAME_PATTERN)],
                       Annotated[str, Field(max_length=MAX_DOCUMENT_CHARS)]], Field(max_length=MAX_DOCUMENTS)]
    ] = None
    stream: Optional[bool] = Field(default=None, description="true: send the run's events as task:event frames.")


class TaskEventData(_Data):
    """``task:event``: one event of a running task (only for a task sent with ``stream: true``)."""

    task_id: _Id
    event: RunEvent


class TaskResultData(_Data):
    """``task:result``: ``status: success`` with ``result``, or ``status: error`` with ``error`` (and ``code``)."""

    task_id: _Id
    status: Literal["success", "error"]
    result: Optional[list[AgentMessage]] = None
    error: Optional[str] = None
    code: Optional[str] = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _shape(self) -> TaskResultData:
        if self.status == "success" and self.result is None:
            raise ValueError("a success result needs 'result' (a list of AgentMessage)")
        if self.status == "error" and not self.error:
            raise ValueError("an error result needs 'error' (a message)")
        return self


class ChatForwardData(_Data):
    """``chat:forward``: an OpenAI chat-completions ``body`` for the agent's model server, passed as sent."""

    request_id: _Id
    body: dict[str, Any]
    deadline_seconds: float = Field(gt=0, le=900, description="How long the agent may take.")


class ChatChunkData(_Data):
    """``chat:chunk``: the ``data`` of one event of a streamed pass-through, in order."""

    request_id: _Id
    data: str


class ChatResultData(_Data):
    """``chat:result``: ``status: success`` with the answer's ``body`` (none after a stream's chunks), or
    ``status: error`` with ``error`` and ``code``."""

    request_id: _Id
    status: Literal["success", "error"]
    body: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    code: Optional[str] = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _shape(self) -> ChatResultData:
        if self.status == "error" and not self.error:
            raise ValueError("an error result needs 'error' (a message)")
        return self


class TaskCancelData(_Data):
    """``task:cancel``: the task to stop and why."""

    task_id: _Id
    reason: str = ""


class HeartbeatData(_Data):
    """``heartbeat`` and ``heartbeat:ack``: ``ts`` (optional) is the sender's time, echoed back in the ack."""

    ts: Optional[float] = None


class ErrorData(_Data):
    """``error``: the answer to a frame that could not be accepted."""

    error: str
    code: ErrorCode
    task_id: Optional[str] = None
    message_type: Optional[str] = None


# ------------------------------------------------------------------------------------------- messages


class RegisterMessage(WebSocketMessage):
    """``agent:register``, agent to hub: the first frame on a connection, saying who the agent is and what it runs."""

    type: Literal["agent:register"] = "agent:register"
    data: RegisterData


class RegistrationSuccessMessage(WebSocketMessage):
    """``registration:success``, hub to agent: the answer to an accepted ``agent:register``; tasks may follow."""

    type: Literal["registration:success"] = "registration:success"
    data: RegistrationSuccessData


class RegistrationErrorMessage(WebSocketMessage):
    """``registration:error``, hub to agent: a refused ``agent:register`` (INVALID_REQUEST: the agent may send a
    corrected one; FORBIDDEN: the id is taken or not the token's, and the hub closes the connection)."""

    type: Literal["registration:error"] = "registration:error"
    data: RegistrationErrorData


class TaskExecuteMessage(WebSocketMessage):
    """``task:execute``, hub to agent: run a client's task; the agent answers with ``task:result`` (preceded by
    ``task:event`` frames when ``stream`` is set)."""

    type: Literal["task:execute"] = "task:execute"
    data: TaskExecuteData


class TaskResultMessage(WebSocketMessage):
    """``task:result``, agent to hub: the outcome of a ``task:execute``; the first one for a ``task_id`` wins."""

    type: Literal["task:result"] = "task:result"
    data: TaskResultData


class TaskEventMessage(WebSocketMessage):
    """``task:event``, agent to hub: one event of a task sent with ``stream: true``, before its ``task:result``."""

    type: Literal["task:event"] = "task:event"
    data: TaskEventData


class TaskCancelMessage(WebSocketMessage):
    """``task:cancel``, hub to agent: stop a task (its attempt timed out, another agent answered first, or the
    client stopped waiting); no result is expected."""

    type: Literal["task:cancel"] = "task:cancel"
    data: TaskCancelData


class ChatForwardMessage(WebSocketMessage):
    """``chat:forward``, hub to agent: a chat-completions request for the agent's model server, sent only to an
    agent that registered :data:`CHAT_FORWARD`; answered by ``chat:chunk`` frames (streams) and ``chat:result``."""

    type: Literal["chat:forward"] = "chat:forward"
    data: ChatForwardData


class ChatChunkMessage(WebSocketMessage):
    """``chat:chunk``, agent to hub: one Server-Sent Event of a streamed ``chat:forward``, before ``chat:result``."""

    type: Literal["chat:chunk"] = "chat:chunk"
    data: ChatChunkData


class ChatResultMessage(WebSocketMessage):
    """``chat:result``, agent to hub: the last frame of a ``chat:forward``: the answer's JSON, or the error."""

    type: Literal["chat:result"] = "chat:result"
    data: ChatResultData


class HeartbeatMessage(WebSocketMessage):
    """``heartbeat``, either side: an application-level liveness check for peers that cannot send WebSocket
    pings; answered by ``heartbeat:ack``."""

    type: Literal["heartbeat"] = "heartbeat"
    data: HeartbeatData = Field(default_factory=HeartbeatData)


class HeartbeatAckMessage(WebSocketMessage):
    """``heartbeat:ack``, either side: the answer to a ``heartbeat``, echoing its ``ts``."""

    type: Literal["heartbeat:ack"] = "heartbeat:ack"
    data: HeartbeatData = Field(default_factory=HeartbeatData)


class ErrorMessage(WebSocketMessage):
    """``error``, either side: the answer to a frame that was not accepted; the connection stays open, and an
    ``error`` is never answered."""

    type: Literal["error"] = "error"
    data: ErrorData


BridgeMessage = Annotated[
    Union[
        RegisterMessage,
        RegistrationSuccessMessage,
        RegistrationErrorMessage,
        TaskExecuteMessage,
        TaskResultMessage,
        TaskEventMessage,
        TaskCancelMessage,
        ChatForwardMessage,
        ChatChunkMessage,
        ChatResultMessage,
        HeartbeatMessage,
        HeartbeatAckMessage,
        ErrorMessage,
    ],
    Field(discriminator="type"),
]
MESSAGE_TYPES: tuple[str, ...] = (
    "agent:register",
    "registration:success",
    "registration:error",
    "task:execute",
    "task:result",
    "task:event",
    "task:cancel",
    "chat:forward",
    "chat:chunk",
    "chat:result",
    "heartbeat",
    "heartbeat:ack",
    "error",
)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(BridgeMessage)


# ---------------------------------------------------------------------------------------------- codec


def encode(message: WebSocketMessage) -> str:
    """The JSON text of a frame (unset optional fields left out, as in the reference's examples).

    Args:
        message: The frame.
    """
    return message.model_dump_json(exclude_none=True)


def error_frame(
    code: ErrorCode, message: str, *, task_id: str | None = None, message_type: str | None = None
) -> str:
    """The JSON text of an ``error`` frame.

    Args:
        code: What went wrong.
        message: What to tell the peer.
        task_id: The task the rejected frame was about, when it could be read.
        message_type: The rejected frame's ``type``, when it could be read.
    """
    return encode(ErrorMessage(data=ErrorData(error=message, code=code, task_id=task_id, message_type=message_type)))


def frame_size(raw: str | bytes) -> int:
    """The size of a frame in bytes (UTF-8 for text).

    Args:
        raw: The frame as received.
    """
    return len(raw) if isinstance(raw, (bytes, bytearray)) else len(raw.encode("utf-8", "surrogatepass"))


def parse_frame(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Validate one frame into its typed message.

    Raises AgentError: PAYLOAD_TOO_LARGE above ``max_bytes``, INVALID_REQUEST for anything else wrong (not
    JSON, not an object, unknown ``type``, bad ``data``), with a message that says what and where. The error's
    ``details`` carry the frame's ``type`` and ``data.task_id`` when they could be read, so the receiver can
    tie a bad ``task:result`` to its task.

    Args:
        raw: The frame as received (a text or binary WebSocket message).
        max_bytes: The largest frame accepted.
    """
    # A str's UTF-8 size is at most 4 bytes a character: only long frames need the exact count.
    size = len(raw) if not isinstance(raw, str) or len(raw) * 4 <= max_bytes else frame_size(raw)
    if size > max_bytes:
        raise AgentError(ErrorCode.PAYLOAD_TOO_LARGE, f"Frame of {size} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _describe(raw, exc) from None


def _describe(raw: str | bytes, exc: ValidationError) -> AgentError:
    try:
        # Deep nesting and lone surrogates are errors here too, never an exception that closes the connection.
        frame = safe_loads(raw, what="Frame")
    except AgentError as err:
        return err
    if not isinstance(frame, dict):
        return AgentError(ErrorCode.INVALID_REQUEST, "Frame must be a JSON object with 'type' and 'data'")
    kind = frame.get("type")
    data = frame.get("data")
    task_id = data.get("task_id") if isinstance(data, dict) else None
    details = {"type": kind[:64] if isinstance(kind, str) else None,
               "task_id": task_id[:MAX_ID_CHARS] if isinstance(task_id, str) else None}
    if not isinstance(kind, str) or not kind:
        return AgentError(ErrorCode.INVALID_REQUEST, "Frame has no 'type' (a non-empty string)", details=details)
    if kind not in MESSAGE_TYPES:
        return AgentError(
            ErrorCode.INVALID_REQUEST,
            f"Unknown message type {kind[:64]!r}; known types: {', '.join(MESSAGE_TYPES)}",
            details=details,
        )
    # drop=1: the union tag the discriminator adds to every location.
    problems = validation_problems(exc, root="frame", drop=1)
    return AgentError(ErrorCode.INVALID_REQUEST, f"Invalid {kind!r} frame: {problems}", details=details)


def agent_code(code: str | None) -> ErrorCode:
    """The code a client sees for an agent's failed ``task:result``: the agent's own when it is one an agent
    may report (:data:`AGENT_CODES`), else UPSTREAM_ERROR.

    Args:
        code: The ``code`` of the agent's ``task:result`` (None: it sent none).
    """
    try:
        parsed = ErrorCode(code) if code else ErrorCode.UPSTREAM_ERROR
    except ValueError:
        return ErrorCode.UPSTREAM_ERROR
    return parsed if parsed in AGENT_CODES else ErrorCode.UPSTREAM_ERROR
