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
- :mod:`.iso_codes`: the ISO codes for currency, country, US state and language names (in :mod:`.values`);
- :class:`SmallModelPolicy` (:mod:`lmstudio_agent.model.policy`, outside this package): the rules as one object
  the agent is given, which it holds without loading them;
- :mod:`.lexicon`: their English words, in one data file (``lexicon.json``).

Nothing here is imported with ``lmstudio_agent``: the constrained mode imports the rules with its first round,
the plan imports :mod:`.routing` with the first plan that has tools, and the names below load from their modules
when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..policy import SmallModelPolicy
    from .grammar import (
        answer_offered, call_schema, listed_tools, related, response_format, round_tools, unfilled,
    )
    from .sources import code_like, copy_sources, json_objects, numbers, spans
    from .wire import (
        ANSWER_KEY, ANSWER_SUMMARY, ANSWER_TOPIC, ARGUMENTS_KEY, BUILTIN_FINAL_TOOL, FINAL_SUMMARY, FINAL_TOPIC,
        NAME_KEY, NOTE_KEY, TOPIC_KEY, agent_note, answer_schema, callable_tools, describe_tools, format_answer,
        format_call, format_result, read_answer, system_prompt, topic,
    )

# Each name's module, imported on first use: the plan needs only :mod:`.routing` (and its lexicon), so a run in
# the native or parsed mode never loads the grammar, the copy rules or the value forms.
_HOMES = {
    "SmallModelPolicy": "..policy",
    **dict.fromkeys(("answer_offered", "call_schema", "listed_tools", "related", "response_format", "round_tools",
                     "unfilled"), ".grammar"),
    **dict.fromkeys(("code_like", "copy_sources", "json_objects", "numbers", "spans"), ".sources"),
    **dict.fromkeys(("ANSWER_KEY", "ANSWER_SUMMARY", "ANSWER_TOPIC", "ARGUMENTS_KEY", "BUILTIN_FINAL_TOOL",
                     "FINAL_SUMMARY", "FINAL_TOPIC", "NAME_KEY", "NOTE_KEY", "TOPIC_KEY", "agent_note",
                     "answer_schema", "callable_tools", "describe_tools", "format_answer", "format_call",
                     "format_result", "read_answer", "system_prompt", "topic"), ".wire"),
}

_SUBMODULES = frozenset({"copying", "grammar", "lexicon", "routing", "sources", "values", "wire"})


def __getattr__(name: str) -> Any:
    """The exported ``name``, or the submodule ``name``, imported now.

    Args:
        name: The attribute asked for.
    """
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ANSWER_KEY", "ANSWER_SUMMARY", "ANSWER_TOPIC", "ARGUMENTS_KEY", "BUILTIN_FINAL_TOOL", "FINAL_SUMMARY",
    "FINAL_TOPIC", "NAME_KEY", "NOTE_KEY", "TOPIC_KEY", "SmallModelPolicy", "agent_note", "answer_offered",
    "answer_schema", "call_schema", "callable_tools", "code_like", "copy_sources", "describe_tools", "format_answer",
    "format_call", "format_result", "json_objects", "listed_tools", "numbers", "read_answer", "related",
    "response_format", "round_tools", "spans", "system_prompt", "topic", "unfilled",
]
