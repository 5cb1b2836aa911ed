"""The frames of a serverless hub's agent connections: what one frame from an agent means
(:func:`on_agent_frame`, by the process hub's rules and the identity rules of
:mod:`~lmstudio_agent.bridge.identities`) and the frames the hub answers (registration, tasks, heartbeats).

The platform acts on the :class:`FrameOutcome`: it sends the reply and keeps the registration (a socket
attachment, a DynamoDB row). :mod:`.relay` re-exports every name here. Nothing here imports websockets or a
cloud SDK: the Worker's bundle carries this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import AgentError, ErrorCode
from .identities import AgentIdentity, refusal_of
from .protocol import (
    MAX_FRAME_BYTES,
    ErrorMessage,
    HeartbeatAckMessage,
    HeartbeatMessage,
    RegisterData,
    RegisterMessage,
    RegistrationErrorData,
    RegistrationErrorMessage,
    RegistrationSuccessData,
    RegistrationSuccessMessage,
    TaskEventData,
    TaskEventMessage,
    TaskExecuteData,
    TaskExecuteMessage,
    TaskResultData,
    TaskResultMessage,
    encode,
    error_frame,
    parse_frame,
)


# The text heartbeat the platform may answer without running the hub's code (Cloudflare's
# setWebSocketAutoResponse matches a whole frame exactly): the agent client's own heartbeat frame.
HEARTBEAT_FRAME = encode(HeartbeatMessage())
HEARTBEAT_ACK_FRAME = encode(HeartbeatAckMessage())


@dataclass
class FrameOutcome:
    """What one frame from an agent means (:func:`on_agent_frame`); the platform acts on it.

    Args:
        reply: The text to send back, if any.
        registered: A registration the connection's identity may make: the platform checks the id is not taken,
            keeps it and answers :func:`registration_success` (or :func:`already_connected`).
        close: Whether to close the connection after the reply (a refused registration).
        result: A task's answer.
        event: An event of a streamed task.
        failed_task: The id of a task whose result frame was invalid: the platform settles that attempt as lost,
            so the task goes to another agent.
    """

    reply: str | None = None
    registered: RegisterData | None = None
    close: bool = False
    result: TaskResultData | None = None
    event: TaskEventData | None = None
    failed_task: str | None = None


def registration_success(agent_id: str, max_message_bytes: int | None = None) -> str:
    """The ``registration:success`` frame.

    Args:
        agent_id: The registered id.
        max_message_bytes: The hub's message limit, when it is below the protocol's frame limit.
    """
    limit = max_message_bytes if max_message_bytes is not None and max_message_bytes < MAX_FRAME_BYTES else None
    return encode(RegistrationSuccessMessage(data=RegistrationSuccessData(agent_id=agent_id, max_message_bytes=limit)))


def registration_error(agent_id: str | None, code: ErrorCode, message: str) -> str:
    """The ``registration:error`` frame.

    Args:
        agent_id: The id the agent asked for, when it was readable.
        code: Why (FORBIDDEN, INVALID_REQUEST...).
        message: What to tell the agent.
    """
    return encode(RegistrationErrorMessage(data=RegistrationErrorData(agent_id=agent_id, error=message, code=code)))


def already_connected(agent_id: str) -> str:
    """The refusal of a second connection for a connected ``agent_id`` (the agent client retries it on a
    reconnect, as against the process hub).

    Args:
        agent_id: The id in use.
    """
    return registration_error(agent_id, ErrorCode.FORBIDDEN,
                              f"agent_id {agent_id!r} is already connected to this hub from another connection")


def task_frame(task: TaskExecuteData) -> str:
    """The ``task:execute`` frame of ``task``.

    Args:
        task: The task.
    """
    return encode(TaskExecuteMessage(data=task))


def on_agent_frame(
    raw: str | bytes, *, identity: AgentIdentity, registered: Optional[RegisterData], max_bytes: int = MAX_FRAME_BYTES
) -> FrameOutcome:
    """What one frame from an agent's connection means, by the rules of the process hub.

    Args:
        raw: The frame as received.
        identity: What the connection's token authenticated as.
        registered: The connection's registration, None before it has one.
        max_bytes: The largest frame accepted.
    """
    try:
        msg = parse_frame(raw, max_bytes=max_bytes)
    except AgentError as exc:
        kind, task_id = exc.details.get("type"), exc.details.get("task_id")
        if registered is None and kind == "agent:register":
            return FrameOutcome(reply=registration_error(None, exc.code, exc.message))
        failed = task_id if registered is not None and kind == "task:result" and task_id else None
        return FrameOutcome(reply=error_frame(exc.code, exc.message, task_id=task_id, message_type=kind),
                            failed_task=failed)
    if registered is None:
        if not isinstance(msg, RegisterMessage):
            return FrameOutcome(reply=error_frame(
                ErrorCode.INVALID_REQUEST, f"Register first: the first message must be agent:register, not {msg.type}",
                message_type=msg.type))
        refusal = refusal_of(identity, msg.data.agent_id, msg.data.tools)
        if refusal is not None:
            return FrameOutcome(reply=registration_error(msg.data.agent_id, ErrorCode.FORBIDDEN, refusal), close=True)
        return FrameOutcome(registered=msg.data)
    if isinstance(msg, TaskResultMessage):
        return FrameOutcome(result=msg.data)
    if isinstance(msg, TaskEventMessage):
        return FrameOutcome(event=msg.data)
    if isinstance(msg, HeartbeatMessage):
        return FrameOutcome(reply=encode(HeartbeatAckMessage(data=msg.data)))
    if isinstance(msg, (HeartbeatAckMessage, ErrorMessage)):
        return FrameOutcome()
    if isinstance(msg, RegisterMessage):
        text = f"This connection is already registered as {registered.agent_id!r}"
    else:
        text = f"Message type {msg.type!r} is sent by the hub, not by an agent"
    return FrameOutcome(reply=error_frame(ErrorCode.INVALID_REQUEST, text, message_type=msg.type))
