"""The notebook's invoice agent (its goals verbatim) end to end on the real embedded model (gateway-model serving
SmolLM2-135M), on invoices other than the demo's: other layouts, vendors, currencies and date formats, asked in
ordinary words that name neither step. The invoice goes to the run as a document, or pasted into the request;
either way it reaches ``extract_invoice_data`` by reference. The stored fields are checked one by one, and the
answer must say which invoice was stored."""

from __future__ import annotations

import pytest

from lmstudio_agent import LMStudioAgent
from lmstudio_agent.agent.loop import is_words
from lmstudio_agent.builtins import INVOICE_GOALS, INVOICE_INSTRUCTION, builtin_registry
from lmstudio_agent.agent.messages import answered, final_answer
from tests.support.invoices import CASES, CountingStorage, stored_view

pytestmark = [pytest.mark.model, pytest.mark.slow]


DELIVERIES = {
    "document": lambda text: (INVOICE_INSTRUCTION, {"invoice": text}, "@doc:invoice"),
    "attached": lambda text: ("Handle the attached invoice", {"invoice": text}, "@doc:invoice"),
    "inline": lambda text: (f"Here is an invoice from our supplier:\n{text}", None, "@doc:input"),
}


@pytest.mark.parametrize("delivery", ["document", "inline"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_the_invoice_agent_stores_the_right_fields_once_and_answers_in_words(embedded_model, case, delivery):
    await _run_and_check(embedded_model, case, delivery)


async def test_another_ordinary_wording_runs_both_steps(embedded_model):
    await _run_and_check(embedded_model, CASES[0], "attached")


async def _run_and_check(embedded_model, case, delivery):
    instruction, documents, reference = DELIVERIES[delivery](case.text)
    storage = CountingStorage()
    agent = LMStudioAgent(model_name=embedded_model.model, base_url=embedded_model.base_url,
                          api_key=embedded_model.api_key, tools=builtin_registry().select(tags=["invoices"]),
                          goals=INVOICE_GOALS, context={"invoice_storage": storage}, max_rounds=6,
                          request_timeout=300, run_timeout=1200)
    try:
        await agent.aload_model()
        transcript = await agent.aact(instruction, documents=documents)
    finally:
        await agent.client.aclose()
    events = [m.to_dict() for m in transcript]
    # The model passed the invoice by reference, not retyped.
    assert events[0] == {"type": "action", "tool": "extract_invoice_data", "args": {"document_text": reference}}, events
    assert list(storage) == [case.expected["invoice_number"]], events
    assert stored_view(storage[case.expected["invoice_number"]]) == case.expected
    assert storage.writes == 1, events
    answer = final_answer(transcript)
    assert answered(transcript) and is_words(answer) and len(answer) <= 400, events
    assert case.expected["invoice_number"] in answer, events
