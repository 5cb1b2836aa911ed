"""Long inputs by reference: the shared functions, and runs that carry documents (scripted loopback upstream)."""

import pytest

from lmstudio_agent.agent.loop import Agent, Goal
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.model.smallmodel import call_schema
from lmstudio_agent.agent.documents import (
    LONG_INPUT_CHARS, MAX_DOCUMENTS, UnknownDocumentError, check_documents, listing, reference, resolve,
    with_long_input,
)
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.lmstudio import LMStudioAgent
from lmstudio_agent.agent.messages import answered, final_answer
from lmstudio_agent.agent.tools import ToolRegistry, tool_from_function
from tests.support.openai_stub import json_content, text, tool_call

INVOICE = "ACME Ltd\nInvoice #: A-1\nDate: 2024-01-02\nWidget  2  5.00  10.00\nTotal: 10.00 EUR\n"
received: list[str] = []


def count_lines(document_text: str) -> int:
    """Count the lines of a document.

    Args:
        document_text: The document's text.
    """
    received.append(document_text)
    return len(document_text.splitlines())


@pytest.fixture(autouse=True)
def _reset():
    received.clear()


def agent_for(server, mode="constrained", **kwargs) -> Agent:
    return Agent(client=ChatClient(server.base_url, model="scripted-model"), tools=ToolRegistry([tool_from_function(count_lines)]),
                 goals=[Goal("Persona", "You help.")], mode=mode, **kwargs)


# ------------------------------------------------------------------------------------------- the functions


def test_resolve_replaces_exact_references_at_any_depth_and_nothing_else():
    docs = {"invoice": INVOICE, "note": "n"}
    args = {"a": "@doc:invoice", "b": ["@doc:note", "see @doc:note", 3], "c": {"d": " @doc:note "}, "e": "@doc"}
    assert resolve(args, docs) == {"a": INVOICE, "b": ["n", "see @doc:note", 3], "c": {"d": "n"}, "e": "@doc"}
    assert args["a"] == "@doc:invoice"  # the input is not modified
    assert resolve({"x": "plain"}, {}) == {"x": "plain"}


def test_resolve_unknown_reference_names_the_known_documents():
    with pytest.raises(UnknownDocumentError) as info:
        resolve({"text": "@doc:invoce"}, {"invoice": INVOICE})
    assert info.value.code is ErrorCode.TOOL_EXECUTION_FAILED
    assert "Unknown document '@doc:invoce'" in info.value.message and "@doc:invoice" in info.value.message


def test_listing_gives_names_sizes_and_how_to_pass_one():
    text_ = listing({"invoice": INVOICE})
    assert '"@doc:invoice"' in text_ and f"{len(INVOICE)} characters" in text_ and "ACME Ltd" in text_
    assert listing({}) == "" and reference("x") == "@doc:x"


@pytest.mark.parametrize("documents, problem", [
    (["a"], "object"),
    ({"bad name": "x"}, "Invalid document name"),
    ({"-dash": "x"}, "Invalid document name"),
    ({"a": 1}, "must be a string"),
    ({f"d{i}": "x" for i in range(MAX_DOCUMENTS + 1)}, "At most"),
    ({"a": "x" * 60_001}, "at most"),
])
def test_check_documents_refuses_bad_input_with_invalid_request(documents, problem):
    with pytest.raises(AgentError) as info:
        check_documents(documents)
    assert info.value.code is ErrorCode.INVALID_REQUEST and problem in info.value.message


def test_a_long_instruction_is_also_the_input_document():
    # the text a request carries after its own words is the document; a long request with no such block, whole
    carried = "Count the lines:\n" + "line\n" * LONG_INPUT_CHARS
    assert with_long_input(carried, None) == {"input": carried.split(":\n", 1)[1].strip()}
    one_block = "word " * (LONG_INPUT_CHARS // 4)
    assert with_long_input(one_block, None) == {"input": one_block}
    invoice = "Here is an invoice from our supplier: " + "INVOICE INV-7 total 120.00 EUR. " * 8
    assert with_long_input(invoice, None) == {"input": invoice.split(": ", 1)[1].strip()}
    assert with_long_input("Process this invoice: INV-7, 120 EUR", None) == {}  # too short to be a text
    assert with_long_input("short", {"a": "b"}) == {"a": "b"}
    assert with_long_input(carried, {"input": "mine"}) == {"input": "mine"}  # the caller's own input wins


def test_constrained_grammar_offers_references_as_copy_candidates():
    def label(name: str) -> str:
        """Label something.

        Args:
            name: The label.
        """
        return name

    tool = tool_from_function(label)
    schema = call_schema([tool], ["Label the invoice"], ["@doc:invoice"])
    assert "@doc:invoice" in schema["$defs"]["copied_text"]["enum"]
    # Too many spans to copy from: strings stay free, but the references are still offered.
    free = call_schema([tool], [" ".join(f"w{i}" for i in range(400))], ["@doc:invoice"])
    call = next(v for v in free["anyOf"] if v["properties"].get("tool", {}).get("const") == "label")
    spec = call["properties"]["arguments"]["properties"]["name"]
    assert spec["anyOf"][0] == {"type": "string", "enum": ["@doc:invoice"]}


# ------------------------------------------------------------------------------------------------ runs


async def test_a_run_passes_a_document_by_reference_in_constrained_mode(openai_stub):
    openai_stub.enqueue(json_content({"type": "lines", "tool": "count_lines", "arguments": {"document_text": "@doc:invoice"}}),
                        json_content({"tool": "terminate", "arguments": {"message": "The invoice has 5 lines."}}))
    transcript = await agent_for(openai_stub).run("How many lines has the invoice?", documents={"invoice": INVOICE})
    assert received == [INVOICE]
    assert transcript[0].args == {"document_text": "@doc:invoice"}  # the transcript keeps the short reference
    assert transcript[1].content == "5" and final_answer(transcript) == "The invoice has 5 lines."
    first = openai_stub.chat_requests[0]
    assert '"@doc:invoice"' in first["messages"][0]["content"]  # listed in the system prompt ...
    assert "Total: 10.00" not in str(first["messages"])  # ... with a short preview, not its text
    assert "@doc:invoice" in first["response_format"]["json_schema"]["schema"]["$defs"]["copied_text"]["enum"]


async def test_unknown_reference_is_fed_back_and_the_model_can_fix_it(openai_stub):
    openai_stub.enqueue(tool_call("count_lines", {"document_text": "@doc:invoise"}),
                        tool_call("count_lines", {"document_text": "@doc:invoice"}),
                        text("It has 5 lines."))
    transcript = await agent_for(openai_stub, mode="native").run("Lines?", documents={"invoice": INVOICE})
    error = next(m for m in transcript if m.type == "error")
    assert error.code == "TOOL_EXECUTION_FAILED" and "Unknown document '@doc:invoise'" in error.content
    assert "Unknown document" in openai_stub.chat_requests[1]["messages"][-1]["content"]
    assert received == [INVOICE] and final_answer(transcript) == "It has 5 lines."


async def test_a_long_instruction_can_be_passed_whole_by_reference(openai_stub):
    long = "Count the lines of this text:\n" + "some line of text\n" * 80
    openai_stub.enqueue(tool_call("count_lines", {"document_text": "@doc:input"}), text("80 lines."))
    transcript = await agent_for(openai_stub, mode="native").run(long)
    assert received == [long.split(":\n", 1)[1].strip()] and answered(transcript)
    assert '"@doc:input"' in openai_stub.chat_requests[0]["messages"][0]["content"]


def test_lmstudio_agent_act_takes_documents(openai_stub):
    openai_stub.enqueue(tool_call("count_lines", {"document_text": "@doc:invoice"}), text("5 lines."))
    agent = LMStudioAgent(model_name="scripted-model", base_url=openai_stub.base_url, tools=[count_lines],
                          tool_mode="native")
    agent.load_model()
    seen = []
    agent.act("Lines of the invoice?", tools=["count_lines"], on_message=seen.append, documents={"invoice": INVOICE})
    assert received == [INVOICE] and final_answer(seen) == "5 lines."
    with pytest.raises(AgentError) as info:
        agent.act("x", documents={"bad name": "y"})
    assert info.value.code is ErrorCode.INVALID_REQUEST


def test_an_argument_that_holds_a_document_takes_only_the_runs_references():
    """A run with documents: an argument named or described as text, a document, content ... is offered only
    the references, so a tiny model cannot pass a few words of the request as the document."""
    tool = tool_from_function(count_lines)
    schema = call_schema([tool], ["Count the lines of the invoice"], ["@doc:invoice", "@doc:memo"])
    call = next(v for v in schema["anyOf"] if v["properties"].get("tool", {}).get("const") == "count_lines")
    assert call["properties"]["arguments"]["properties"]["document_text"] == {
        "type": "string", "enum": ["@doc:invoice", "@doc:memo"]}
