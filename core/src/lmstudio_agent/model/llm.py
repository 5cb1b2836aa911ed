"""The model handle tools receive through ``action_context.llm``: plain generation and JSON output."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from .client import ChatClient, ChatResponse
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from .schema import validate

logger = logging.getLogger("lmstudio_agent.llm")


@dataclass
class LLM:
    """A chat client bound to a model and, inside a run, to that run's deadline."""

    client: ChatClient
    model: str
    deadline: Deadline | None = None
    max_tokens: int = 512
    supports_json_schema: bool = True

    async def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatResponse:
        """One model call with this LLM's model, deadline and (unless given) ``max_tokens``.

        Args:
            messages: The chat messages (OpenAI format).
            kwargs: More arguments for :meth:`ChatClient.chat` (``response_format``, ``max_tokens``...).
        """
        kwargs.setdefault("max_tokens", self.max_tokens)
        return await self.client.chat(messages, model=self.model, deadline=self.deadline, **kwargs)

    async def generate(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """The model's text reply to ``messages``.

        Args:
            messages: The chat messages (OpenAI format).
            kwargs: More arguments for :meth:`chat`.
        """
        return (await self.chat(messages, **kwargs)).content.strip()

    async def json(self, schema: dict[str, Any], prompt: str, *, system: str | None = None) -> Any:
        """See :func:`prompt_llm_for_json`.

        Args:
            schema: The JSON schema the answer must match.
            prompt: The user message.
            system: Text to put before the JSON instructions in the system message.
        """
        return await prompt_llm_for_json(self, schema, prompt, system=system)


JSON_SYSTEM = "You answer with JSON only, matching this JSON schema:\n{schema}"


async def prompt_llm_for_json(llm_or_context: Any, schema: dict[str, Any], prompt: str, *,
                              system: str | None = None, max_tokens: int | None = None) -> Any:
    """Ask for JSON that matches ``schema``.

    Grammar-constrained through ``response_format`` where the backend supports it; the answer is validated
    against the schema either way; one repair round with the validation errors; then MODEL_OUTPUT_INVALID.
    ``llm_or_context`` is an :class:`LLM` or an action context carrying one (the notebook's call style).

    Args:
        llm_or_context: An :class:`LLM`, or an action context whose ``get("llm")`` gives one.
        schema: The JSON schema the answer must match.
        prompt: The user message.
        system: Text to put before the JSON instructions in the system message.
        max_tokens: The most tokens the reply may have (default: the LLM's).
    """
    llm: LLM | None = llm_or_context if isinstance(llm_or_context, LLM) else llm_or_context.get("llm")
    if llm is None:
        raise AgentError(ErrorCode.MODEL_NOT_LOADED, "No model is available to this tool (action_context has no llm)")
    schema_text = json.dumps(schema, separators=(",", ":"))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": (system + "\n\n" if system else "") + JSON_SYSTEM.format(schema=schema_text)},
        {"role": "user", "content": prompt},
    ]
    kwargs: dict[str, Any] = {"max_tokens": max_tokens or llm.max_tokens}
    if llm.supports_json_schema:
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}

    problems: list[str] = []
    for attempt in range(2):
        reply = (await llm.chat(messages, **kwargs)).content
        try:
            value = json.loads(_strip_fences(reply))
        except ValueError:
            problems = ["the reply is not valid JSON" + (" (it was cut off)" if reply and reply[-1] not in "}]" else "")]
        else:
            problems = validate(value, schema)
            if not problems:
                return value
        if attempt == 0:
            logger.debug("JSON answer invalid (%s); asking once more", "; ".join(problems))
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": "That answer is invalid: " + "; ".join(problems[:5])
                 + ". Reply again with corrected JSON only."},
            ]
    raise AgentError(ErrorCode.MODEL_OUTPUT_INVALID,
                     "The model did not produce JSON matching the schema: " + "; ".join(problems[:5]))


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else text[3:]
        text = text.rsplit("```", 1)[0]
    return text.strip()
