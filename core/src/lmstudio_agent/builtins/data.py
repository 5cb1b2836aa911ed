"""``extract_data`` and ``analyze_sentiment``, as the API reference shows them."""

from __future__ import annotations

import math
import random
from typing import Annotated, Any, cast

from pydantic import Field

from ..errors import AgentError, ErrorCode
from ..model.llm import LLM, prompt_llm_for_json
from ..agent.tools import ActionContext

TYPE_NAMES = {
    "string": "string", "str": "string", "text": "string", "date": "string",
    "number": "number", "float": "number", "decimal": "number",
    "integer": "integer", "int": "integer",
    "boolean": "boolean", "bool": "boolean",
    "array": "array", "list": "array",
    "object": "object", "dict": "object",
}
SENTIMENTS = ("positive", "negative", "neutral")


def _llm(action_context: ActionContext) -> LLM:
    llm: LLM | None = action_context.get("llm")
    if llm is None:
        raise AgentError(ErrorCode.MODEL_NOT_LOADED, "No model is available to this tool")
    return llm


def schema_from_field_types(fields: dict[str, str]) -> dict[str, Any]:
    """A JSON schema from ``{"name": "string", "age": "number"}``: every field present, null when not found.

    Args:
        fields: Field names and their types (``string``, ``number``, ``integer``, ``boolean``...; others are strings).
    """
    if not fields:
        raise ValueError("schema must name at least one field")
    properties = {}
    for name, type_name in fields.items():
        json_type = TYPE_NAMES.get(str(type_name).strip().lower(), "string")
        properties[name] = {"anyOf": [{"type": json_type}, {"type": "null"}]}
    return {"type": "object", "properties": properties, "required": list(fields), "additionalProperties": False}


async def extract_data(action_context: ActionContext, text: str,
                       schema: Annotated[dict[str, str], Field(min_length=1)]) -> dict[str, Any]:
    """Extract structured data from text.

    Args:
        text: Input text to extract from.
        schema: Field names and their types, e.g. {"name": "string", "age": "number"}.
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    json_schema = schema_from_field_types(schema)
    prompt = f"Extract these fields from the text: {', '.join(schema)}. Use null for a field that is not there.\n\nText:\n{text}"
    return cast(dict[str, Any], await prompt_llm_for_json(_llm(action_context), json_schema, prompt,
                                                          system="You extract data from text exactly as written."))


async def analyze_sentiment(action_context: ActionContext, text: str) -> dict[str, Any]:
    """Analyze the sentiment of text: positive, negative or neutral, with a confidence.

    Args:
        text: Text to analyze.
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    llm = _llm(action_context)
    messages = [
        {"role": "system", "content": "Classify the sentiment of the user's text as positive, negative or neutral. "
                                      'Answer with JSON: {"sentiment": "..."}.'},
        {"role": "user", "content": text},
    ]
    schema = {"type": "object", "properties": {"sentiment": {"enum": list(SENTIMENTS)}}, "required": ["sentiment"],
              "additionalProperties": False}
    response_format = {"type": "json_schema", "json_schema": {"name": "sentiment", "schema": schema}}
    response = await llm.chat(messages, response_format=response_format, max_tokens=16, logprobs=True, top_logprobs=10)
    label = _label_of(response.content)
    if response.logprobs:
        distribution = label_distribution(response.content, response.logprobs, SENTIMENTS)
        if distribution:
            # The label is the most probable one under the distribution reported, not the sampled one: the
            # two differ when the grammar's first token splits the mass (e.g. "ne" of negative/neutral).
            best = max(SENTIMENTS, key=lambda name: distribution.get(name, 0.0))
            return {"sentiment": best, "confidence": round(distribution[best], 4)}
    # No log-probabilities from this backend: estimate by agreement over a few sampled answers.
    votes = [label]
    for _ in range(4):
        sample = await llm.chat(messages, response_format=response_format, max_tokens=16,
                                temperature=0.8, extra={"seed": random.randrange(1 << 30)})
        votes.append(_label_of(sample.content))
    return {"sentiment": label, "confidence": round(votes.count(label) / len(votes), 4)}


def _label_of(content: str) -> str:
    lowered = content.lower()
    for label in SENTIMENTS:
        if label in lowered:
            return label
    raise AgentError(ErrorCode.MODEL_OUTPUT_INVALID, f"The model's sentiment answer has no label: {content[:80]!r}")


def label_distribution(content: str, tokens: list[Any], labels: tuple[str, ...]) -> dict[str, float] | None:
    """Probability of each label at the point where the model wrote it, from the token log-probabilities.

    Walks the generated tokens to the one where the label starts, then reads the alternatives there (and at
    the following tokens while the prefix is still shared between labels, e.g. "ne" of negative/neutral).
    The result is normalised over the labels.

    Args:
        content: The model's reply, which names a label.
        tokens: The reply's tokens with their top log-probabilities (each has ``token`` and its alternatives).
        labels: The labels to score.
    """
    chosen = _label_of(content)
    start = content.lower().find(chosen)
    offset, index = 0, None
    for i, tok in enumerate(tokens):
        if offset + len(tok.token) > start:
            index = i
            break
        offset += len(tok.token)
    if index is None:
        return None
    mass = {label: 0.0 for label in labels}
    path_prob, prefix = 1.0, ""  # prefix: the chosen tokens from the label's first token on
    for tok in tokens[index:]:
        alternatives = dict(tok.top) or {tok.token: tok.logprob}
        alternatives.setdefault(tok.token, tok.logprob)
        for alt, logprob in alternatives.items():
            if alt == tok.token:
                continue
            candidate = (prefix + alt).strip().strip('"').lower()
            matches = [label for label in labels if candidate and label.startswith(candidate)]
            for label in matches:
                mass[label] += path_prob * math.exp(logprob) / len(matches)
        prefix += tok.token
        path_prob *= math.exp(tok.logprob)
        written = prefix.strip().strip('"').lower()
        consistent = [label for label in labels if label.startswith(written) or written.startswith(label)]
        if len(consistent) <= 1:
            for label in consistent:
                mass[label] += path_prob
            break
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: value / total for label, value in mass.items()}
