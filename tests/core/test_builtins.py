"""Built-in tools against the scripted upstream: what they send, and what they make of the answers."""

import json
import math

import pytest

from lmstudio_agent.builtins import (
    INVOICE_SCHEMA, JsonFileInvoiceStorage, analyze_sentiment, builtin_registry, extract_data,
    extract_invoice_data, prompt_expert, store_invoice, write_feature_announcement,
)
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.model.llm import LLM
from lmstudio_agent.agent.tools import ActionContext
from tests.support.openai_stub import MODEL_ID, json_content, text


def context_for(server, **properties) -> ActionContext:
    return ActionContext(properties, llm=LLM(ChatClient(server.base_url, model=MODEL_ID), MODEL_ID))


def logprobs_for(tokens: list[tuple[str, float, dict[str, float]]]) -> dict:
    return {"content": [{"token": t, "logprob": lp, "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()]}
                        for t, lp, top in tokens]}


async def test_sentiment_confidence_comes_from_label_logprobs(openai_stub):
    p_pos, p_neg, p_neu = 0.7, 0.2, 0.1
    tokens = [('{"', -0.01, {}), ("sent", -0.01, {}), ("iment", -0.01, {}), ('":', -0.01, {}), (' "', -0.01, {}),
              ("pos", math.log(p_pos), {"pos": math.log(p_pos), "neg": math.log(p_neg), "neutral": math.log(p_neu)}),
              ("itive", -0.001, {}), ('"}', -0.01, {})]
    openai_stub.enqueue(text('{"sentiment": "positive"}', logprobs=logprobs_for(tokens)))
    result = await analyze_sentiment(context_for(openai_stub), "This product is amazing!")
    assert result["sentiment"] == "positive"
    assert result["confidence"] == pytest.approx(p_pos / (p_pos + p_neg + p_neu), abs=1e-3)
    sent = openai_stub.chat_requests[0]
    assert sent["logprobs"] is True and sent["response_format"]["json_schema"]["schema"]["properties"]["sentiment"]["enum"]


async def test_sentiment_shared_prefix_is_resolved_at_the_next_token(openai_stub):
    # "ne" starts both negative and neutral: the split is read at the following token.
    tokens = [('{"sentiment":', -0.01, {}), (' "', -0.01, {}), ("ne", math.log(0.8), {"ne": math.log(0.8), "pos": math.log(0.2)}),
              ("gative", math.log(0.75), {"gative": math.log(0.75), "utral": math.log(0.25)}), ('"}', -0.01, {})]
    openai_stub.enqueue(text('{"sentiment": "negative"}', logprobs=logprobs_for(tokens)))
    result = await analyze_sentiment(context_for(openai_stub), "Awful.")
    assert result == {"sentiment": "negative", "confidence": pytest.approx(0.6, abs=1e-3)}


async def test_sentiment_without_logprobs_uses_agreement_of_samples(openai_stub):
    openai_stub.enqueue(*(json_content({"sentiment": s}) for s in
                          ["neutral", "neutral", "positive", "neutral", "negative"]))
    result = await analyze_sentiment(context_for(openai_stub), "It is a chair.")
    assert result == {"sentiment": "neutral", "confidence": 0.6}
    assert len(openai_stub.chat_requests) == 5 and openai_stub.chat_requests[1]["temperature"] > 0


async def test_extract_data_builds_a_schema_and_validates(openai_stub):
    openai_stub.enqueue(json_content({"name": "Jane Smith", "age": 28, "company": "Google"}))
    result = await extract_data(context_for(openai_stub), "Jane Smith, 28 years old, works at Google",
                                {"name": "string", "age": "number", "company": "string"})
    assert result == {"name": "Jane Smith", "age": 28, "company": "Google"}
    schema = openai_stub.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["name", "age", "company"]


async def test_json_output_gets_one_repair_round_then_a_clear_error(openai_stub):
    openai_stub.enqueue(json_content({"name": "Jane", "age": "old"}), json_content({"name": "Jane", "age": 28}))
    result = await extract_data(context_for(openai_stub), "Jane, 28", {"name": "string", "age": "number"})
    assert result == {"name": "Jane", "age": 28}
    repair = openai_stub.chat_requests[1]["messages"][-1]["content"]
    assert "age" in repair and "invalid" in repair
    openai_stub.enqueue(text("I don't know"), text("still no"))
    with pytest.raises(AgentError) as info:
        await extract_data(context_for(openai_stub), "?", {"name": "string"})
    assert info.value.code is ErrorCode.MODEL_OUTPUT_INVALID


async def test_invoice_extraction_and_pluggable_storage(openai_stub, tmp_path):
    document = "Globex Ltd\nInvoice #INV-42\nDate: 2024-03-01\nDescription Qty Price Total\nWidget 1 1,250.50 1,250.50\nTotal: $1,250.50"
    reply = {"invoice_number": "INV-42", "date": "2024-03-01", "vendor": {"name": "Globex Ltd"},
             "line_items": [{"description": "Widget", "quantity": 1, "unit_price": 1250.5, "total": 1250.5}],
             "total_amount": 1250.5, "currency": "USD"}
    openai_stub.enqueue(json_content(reply))
    context = context_for(openai_stub, invoice_storage=JsonFileInvoiceStorage(tmp_path / "invoices.json"))
    extracted = await extract_invoice_data(context, document)
    invoice = {"invoice_number": "INV-42", "date": "2024-03-01", "total_amount": 1250.5, "currency": "USD",
               "vendor": {"name": "Globex Ltd"}, "line_items": reply["line_items"]}
    assert extracted == invoice
    schema = openai_stub.chat_requests[0]["response_format"]["json_schema"]["schema"]
    # The grammar writes every field, each value one copied from the document.
    assert set(INVOICE_SCHEMA["required"]) <= set(schema["required"])
    assert schema["properties"]["invoice_number"] == {"enum": ["INV-42"]}
    assert schema["properties"]["total_amount"] == {"enum": [1250.5]}
    assert store_invoice(context, extracted)["invoice_number"] == "INV-42"
    assert json.loads((tmp_path / "invoices.json").read_text())["INV-42"] == invoice
    with pytest.raises(ValueError, match="invoice number"):
        store_invoice(context, {"date": "x"})
    plain = ActionContext({"invoice_storage": {}})
    store_invoice(plain, invoice)
    assert plain.get("invoice_storage") == {"INV-42": invoice}


async def test_persona_tools_send_the_expert_as_system_prompt(openai_stub):
    openai_stub.enqueue(text("As a writer: ..."), text("Announcing ..."))
    assert await prompt_expert(context_for(openai_stub), "a poet", "write") == "As a writer: ..."
    assert openai_stub.chat_requests[0]["messages"][0]["content"].endswith("a poet")
    assert await write_feature_announcement(context_for(openai_stub), "dark mode", "business") == "Announcing ..."
    assert "business audience" in openai_stub.chat_requests[1]["messages"][1]["content"]


def test_builtin_registry_contents_and_side_effects():
    registry = builtin_registry()
    assert {"extract_data", "analyze_sentiment", "extract_invoice_data", "store_invoice", "prompt_expert",
            "generate_technical_documentation", "design_test_suite", "perform_code_review",
            "write_feature_announcement"} == set(registry.names())
    assert registry.get("store_invoice").side_effects and not registry.get("extract_data").side_effects
    assert "action_context" not in json.dumps(registry.to_openai_tools())


async def test_sentiment_label_is_the_most_probable_under_the_distribution(openai_stub):
    # The sampled token starts "positive" (0.35), but "neg" (0.30) and " negative" (0.25) both start
    # "negative": under the distribution negative is the most probable label, and that is the answer.
    tokens = [('{"sentiment":', -0.01, {}), (' "', -0.01, {}),
              ("pos", math.log(0.35), {"pos": math.log(0.35), "neg": math.log(0.30), "negative": math.log(0.25),
                                       "neutral": math.log(0.10)}),
              ("itive", -0.001, {}), ('"}', -0.01, {})]
    openai_stub.enqueue(text('{"sentiment": "positive"}', logprobs=logprobs_for(tokens)))
    result = await analyze_sentiment(context_for(openai_stub), "Cold and bland.")
    assert result == {"sentiment": "negative", "confidence": pytest.approx(0.55, abs=1e-3)}
