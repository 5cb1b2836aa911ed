"""Tool calls for very small models: the constrained mode's grammar, the values it copies, the routing prior and
the rules that steer them, as one :class:`SmallModelPolicy`.

Servers that enforce ``response_format`` with a grammar (LM Studio, llama.cpp) can then only produce a
well-formed call. Each choice was kept because it raised the evaluation harness's figures on SmolLM2-135M
(docs/readme/eval.md has the numbers). The modules, each with one job:

- :mod:`.wire`: what the model reads and writes (a call, an answer, a result, the tool listing);
- :mod:`.sources`: what a conversation offers to copy (spans, numbers, objects, identifiers);
- :mod:`.copying`: which values each argument may take;
- :mod:`.grammar`: one round's schema, and which tools and whether the answer it offers;
- :mod:`.routing`: which tools a request's words are about (a lexical prior);
- :mod:`.values`: values as people write them, in the forms a schema wants;
- :mod:`.policy`: the rules as one object the agent is given;
- :mod:`.lexicon`: their English words, in one data file (``lexicon.json``).
"""

from __future__ import annotations

from .grammar import (
    answer_offered, call_schema, listed_tools, related, response_format, round_tools, unfilled,
)
from ..policy import SmallModelPolicy
from .sources import code_like, copy_sources, json_objects, numbers, spans
from .wire import (
    ANSWER_KEY, ANSWER_SUMMARY, ANSWER_TOPIC, ARGUMENTS_KEY, BUILTIN_FINAL_TOOL, FINAL_SUMMARY, FINAL_TOPIC, NAME_KEY,
    NOTE_KEY, TOPIC_KEY, agent_note, answer_schema, callable_tools, describe_tools, format_answer, format_call,
    format_result, read_answer, system_prompt, topic,
)

__all__ = [
    "ANSWER_KEY", "ANSWER_SUMMARY", "ANSWER_TOPIC", "ARGUMENTS_KEY", "BUILTIN_FINAL_TOOL", "FINAL_SUMMARY",
    "FINAL_TOPIC", "NAME_KEY", "NOTE_KEY", "TOPIC_KEY", "SmallModelPolicy", "agent_note", "answer_offered",
    "answer_schema", "call_schema", "callable_tools", "code_like", "copy_sources", "describe_tools", "format_answer",
    "format_call", "format_result", "json_objects", "listed_tools", "numbers", "read_answer", "related",
    "response_format", "round_tools", "spans", "system_prompt", "topic", "unfilled",
]
