"""Long inputs by reference: a run carries named documents, and a tool call names one instead of retyping it.

In any tool call, a string argument whose whole value is ``"@doc:NAME"`` is replaced by the full text of the
run's document ``NAME`` before the arguments are validated. A 135M model cannot copy a 40-line invoice into
an argument; it can write ``"@doc:invoice"``. The system prompt lists the documents (:func:`listing`), the
constrained mode offers the references as copy candidates for string arguments, and a reference to a
document the run does not have is a tool error the model reads (:class:`UnknownDocumentError`).

A request that carries a text of its own also passes it as the document ``input`` (:func:`with_long_input`),
so a tool can take the whole text by reference: the block after its first line or its opening colon
("Here is an invoice from our supplier: <the invoice>") when that block is :data:`EMBEDDED_MIN_CHARS` long or
more, else the whole instruction when it is longer than :data:`LONG_INPUT_CHARS`. Pasted inline, the
notebook's invoice (about 600 characters) was too short to be a document, and a 135M model passed one of its
lines as ``document_text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from ..errors import AgentError, ErrorCode

PREFIX = "@doc:"
INPUT_DOCUMENT = "input"
LONG_INPUT_CHARS = 1000
EMBEDDED_MIN_CHARS = 200
_LEAD_MAX_CHARS = 160  # a request's own words before the text it carries: "Here is an invoice from our supplier:"
MAX_DOCUMENTS = 8
MAX_DOCUMENT_CHARS = 60_000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_PREVIEW_CHARS = 60

__all__ = [
    "EMBEDDED_MIN_CHARS", "INPUT_DOCUMENT", "LONG_INPUT_CHARS", "embedded_text", "MAX_DOCUMENTS", "MAX_DOCUMENT_CHARS", "NAME_PATTERN", "PREFIX",
    "RunInput", "UnknownDocumentError", "check_documents", "check_input", "listing", "reference", "references", "resolve", "with_long_input",
]


class UnknownDocumentError(AgentError):
    """A call referred to a document the run does not carry; the message (for the model) names the known ones.

    Args:
        name: The document the call referred to.
        known: The names of the run's documents.
    """

    def __init__(self, name: str, known: list[str]) -> None:
        """Build the error; its message lists the run's documents so the model can pick a real one."""
        shown = ", ".join(reference(n) for n in known) or "none"
        super().__init__(ErrorCode.TOOL_EXECUTION_FAILED,
                         f"Unknown document '{reference(name)}'. Documents of this run: {shown}.",
                         details={"document": name, "known": known})
        self.name = name


def reference(name: str) -> str:
    """The value that stands for document ``name`` in a tool call: ``"@doc:NAME"``.

    Args:
        name: The document's name.
    """
    return f"{PREFIX}{name}"


def references(documents: Mapping[str, str] | None) -> list[str]:
    """The reference of every document, in order.

    Args:
        documents: The run's documents by name (None: none).
    """
    return [reference(name) for name in documents or {}]


def _referenced(value: str) -> str | None:
    """The document name a string refers to, or None when it is not a reference."""
    if not value.startswith(PREFIX):
        return None
    name = value[len(PREFIX):].strip()
    return name or None


def resolve(arguments: Any, documents: Mapping[str, str] | None) -> Any:
    """``arguments`` with every string that is exactly a reference replaced by that document's text, at any
    depth (objects and lists). Nothing else changes; the input is not modified.

    Raises :class:`UnknownDocumentError` for a reference to a document that is not in ``documents``.

    Args:
        arguments: A tool call's arguments (any JSON value).
        documents: The run's documents by name (None: none).
    """
    documents = documents or {}
    if isinstance(arguments, str):
        name = _referenced(arguments.strip())
        if name is None:
            return arguments
        if name not in documents:
            raise UnknownDocumentError(name, list(documents))
        return documents[name]
    if isinstance(arguments, dict):
        return {key: resolve(value, documents) for key, value in arguments.items()}
    if isinstance(arguments, list):
        return [resolve(value, documents) for value in arguments]
    return arguments


def listing(documents: Mapping[str, str] | None) -> str:
    """The system-prompt lines that name the run's documents, their sizes, and how to pass one ('' if none).

    Args:
        documents: The run's documents by name (None: none).
    """
    if not documents:
        return ""
    lines = []
    for name, text in documents.items():
        preview = " ".join(text.split())[:_PREVIEW_CHARS]
        lines.append(f'- "{reference(name)}": {len(text)} characters, starting "{preview}"')
    example = reference(next(iter(documents)))
    return ("Documents of this task (their text is not shown here):\n" + "\n".join(lines)
            + f'\nTo give a document to a tool, write its reference as the argument\'s whole value, e.g. "{example}"; '
              "the tool receives the full text.")


def check_documents(documents: Mapping[str, Any] | None) -> dict[str, str]:
    """A validated copy of a run's documents: at most :data:`MAX_DOCUMENTS`, names matching
    :data:`NAME_PATTERN`, texts strings of at most :data:`MAX_DOCUMENT_CHARS`. Raises AgentError
    (INVALID_REQUEST) naming the problem.

    Args:
        documents: The documents as the caller sent them (None: none).
    """
    if documents is None:
        return {}
    if not isinstance(documents, Mapping):
        raise AgentError(ErrorCode.INVALID_REQUEST, "documents must be an object mapping names to texts")
    if len(documents) > MAX_DOCUMENTS:
        raise AgentError(ErrorCode.INVALID_REQUEST, f"At most {MAX_DOCUMENTS} documents per run (got {len(documents)})")
    checked: dict[str, str] = {}
    for name, text in documents.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise AgentError(ErrorCode.INVALID_REQUEST,
                             f"Invalid document name {str(name)[:70]!r}: 1 to 64 letters, digits, '_', '.' or '-', "
                             "starting with a letter or digit")
        if not isinstance(text, str):
            raise AgentError(ErrorCode.INVALID_REQUEST, f"Document '{name}' must be a string")
        if len(text) > MAX_DOCUMENT_CHARS:
            raise AgentError(ErrorCode.INVALID_REQUEST,
                             f"Document '{name}' has {len(text)} characters; at most {MAX_DOCUMENT_CHARS}")
        checked[name] = text
    return checked


@dataclass(frozen=True)
class RunInput:
    """A run's input once checked: the instruction (a non-blank string) and its documents
    (:func:`check_documents`' rules). :meth:`Agent.run <lmstudio_agent.agent.loop.Agent.run>` takes one as it is,
    without checking it again: the endpoint builds one from a request that :class:`ExecuteRequest
    <lmstudio_agent.endpoint.contract.ExecuteRequest>` validated (the request's one validation), a library caller passes
    a plain string and the agent checks it with :func:`check_input`.

    Args:
        instruction: The user's request, already checked.
        documents: Document texts by name, already checked.
    """

    instruction: str
    documents: Mapping[str, str] = field(default_factory=dict)


def check_input(instruction: Any, documents: Mapping[str, Any] | None = None) -> RunInput:
    """A run's input checked once: AgentError (INVALID_INSTRUCTION) for an instruction that is not a non-blank
    string, (INVALID_REQUEST) for documents :func:`check_documents` refuses. A :class:`RunInput` is already
    checked and is returned as it is.

    Args:
        instruction: The user's request, or a :class:`RunInput`.
        documents: Document texts by name (None: none); must be None with a :class:`RunInput`.
    """
    if isinstance(instruction, RunInput):
        if documents is not None:
            raise TypeError("pass the documents in the RunInput, not beside it")
        return instruction
    if not isinstance(instruction, str) or not instruction.strip():
        raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
    return RunInput(instruction, check_documents(documents))


def embedded_text(instruction: str, min_chars: int = EMBEDDED_MIN_CHARS) -> str | None:
    """The text a request carries after its own words: the block after its first line, or after a colon
    within its first words, when that block is at least ``min_chars`` long (None otherwise).

    Args:
        instruction: The user's request.
        min_chars: The shortest block that counts as a text of its own.
    """
    text = instruction.strip()
    cuts = []
    newline = text.find("\n")
    if 0 < newline <= _LEAD_MAX_CHARS:
        cuts.append(newline + 1)
    colon = text.find(":")
    if 0 < colon <= _LEAD_MAX_CHARS:
        cuts.append(colon + 1)
    for cut in sorted(cuts):
        body = text[cut:].strip()
        if len(body) >= min_chars:
            return body
    return None


def with_long_input(instruction: str, documents: Mapping[str, str] | None,
                    threshold: int = LONG_INPUT_CHARS) -> dict[str, str]:
    """The run's documents, plus the text the instruction carries as ``input`` (see the module docstring;
    unless the caller already named a document ``input``).

    Args:
        instruction: The user's request.
        documents: The run's documents (name -> text).
        threshold: The length past which the whole instruction is the document, when it carries no block.
    """
    out = dict(documents or {})
    if INPUT_DOCUMENT in out:
        return out
    carried = embedded_text(instruction)
    if carried is not None:
        out[INPUT_DOCUMENT] = carried
    elif len(instruction) > threshold:
        out[INPUT_DOCUMENT] = instruction
    return out
