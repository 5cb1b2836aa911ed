"""The invoice agent end to end on the real embedded model (gateway-model serving SmolLM2-135M), on invoices
other than the demo's: other layouts, vendors, currencies and date formats. The invoice goes to the run as a
document and to ``extract_invoice_data`` by reference; the stored fields are checked one by one."""

from __future__ import annotations

import pytest

from lmstudio_agent import LMStudioAgent
from lmstudio_agent.agent import is_words
from lmstudio_agent.builtins import INVOICE_GOALS, INVOICE_INSTRUCTION, builtin_registry
from lmstudio_agent.messages import answered, final_answer
from tests.support.invoices import CASES, CountingStorage, stored_view

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_the_invoice_agent_stores_the_right_fields_once_and_answers_in_words(embedded_model, case):
    storage = CountingStorage()
    agent = LMStudioAgent(model_name=embedded_model.model, base_url=embedded_model.base_url,
                          api_key=embedded_model.api_key, tools=builtin_registry().select(tags=["invoices"]),
                          goals=INVOICE_GOALS, context={"invoice_storage": storage}, max_rounds=6,
                          request_timeout=300, run_timeout=1200)
    try:
        await agent.aload_model()
        transcript = await agent.aact(INVOICE_INSTRUCTION, documents={"invoice": case.text})
    finally:
        await agent.client.aclose()
    events = [m.to_dict() for m in transcript]
    # The model passed the invoice by reference, not retyped.
    assert events[0] == {"type": "action", "tool": "extract_invoice_data", "args": {"document_text": "@doc:invoice"}}, events
    assert list(storage) == [case.expected["invoice_number"]], events
    assert stored_view(storage[case.expected["invoice_number"]]) == case.expected
    assert storage.writes == 1, events
    answer = final_answer(transcript)
    assert answered(transcript) and is_words(answer) and len(answer) <= 400, events
