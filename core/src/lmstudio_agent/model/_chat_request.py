"""The body of a chat-completions request as LM Studio accepts it (sent by :mod:`.client`): messages go out with
``content: ""``, never null, and without the agent's own ``_`` keys; ``tool_choice`` only as a string, and only
with tools."""

from __future__ import annotations

from typing import Any

TOOL_CHOICES = frozenset({"none", "auto", "required"})


def _chat_body(messages: list[dict[str, Any]], *, model: str, tools: list[dict[str, Any]] | None,
               tool_choice: str | None, response_format: dict[str, Any] | None, max_tokens: int,
               temperature: float, logprobs: bool, top_logprobs: int | None, extra: dict[str, Any] | None,
               stream: bool) -> dict[str, Any]:
    if tool_choice is not None and (not isinstance(tool_choice, str) or tool_choice not in TOOL_CHOICES):
        raise ValueError(f"tool_choice must be one of {sorted(TOOL_CHOICES)} (LM Studio rejects the object form)")
    body: dict[str, Any] = {
        "model": model,
        "messages": [_outgoing(m) for m in messages],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    if tools:
        body["tools"] = tools
        if tool_choice:
            body["tool_choice"] = tool_choice
    if response_format is not None:
        body["response_format"] = response_format
    if logprobs:
        body["logprobs"] = True
        if top_logprobs:
            body["top_logprobs"] = top_logprobs
    if extra:
        body.update(extra)
    return body


def _outgoing(message: dict[str, Any]) -> dict[str, Any]:
    """A message as sent: ``content`` always a string (some LM Studio versions reject null); keys that start
    with ``_`` are the agent's own bookkeeping and are not sent."""
    out = {k: v for k, v in message.items() if not k.startswith("_")}
    if out.get("content") is None:
        out["content"] = ""
    return out
