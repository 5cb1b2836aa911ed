"""The outcome runner on the real embedded model (gateway-model serving SmolLM2-135M with the shipped adapter).

Behaviour only, no accuracy thresholds (those are figures, recorded by `make eval`): whole runs of a single-call task,
a restraint task and the notebook's invoice agent (invoice passed as a document) go through the real loop; every run
ends with an answer or a coded end, every model call is timed, and the verdict matches what the world shows."""

from __future__ import annotations

import pytest

from lmstudio_eval.outcomes.generator import load_split
from lmstudio_eval.outcomes.report import build_report
from lmstudio_eval.outcomes.runner import TimedClient, run_tasks

pytestmark = [pytest.mark.model, pytest.mark.slow]

DEV = load_split("dev")
PICKED = [next(t for t in DEV if t["kind"] == kind and (family is None or t["family"] == family))
          for kind, family in (("single", None), ("restraint", None), ("invoice", "document"))]


async def test_whole_runs_on_the_embedded_model_are_judged_by_their_outcome(embedded_model):
    client = TimedClient(embedded_model.base_url, embedded_model.api_key, embedded_model.model, timeout=120)
    async with client:
        results = await run_tasks(client, PICKED, styles=["imperative"], max_rounds=5)
    assert [r.task_id for r in results] == [t["id"] for t in PICKED]
    for result in results:
        assert result.end in ("result", "NO_ANSWER", "MODEL_OUTPUT_INVALID", "TOOL_EXECUTION_FAILED"), result
        assert result.call_latencies and all(s > 0 for s in result.call_latencies)
        assert len(result.call_latencies) <= 5 + 2  # the loop's rounds, and the invoice extraction's own calls
        assert result.verdict.success == (result.verdict.state_ok and (result.verdict.answer_ok or result.kind == "restraint")
                                          and result.verdict.answered and not result.verdict.echo), result
        if not result.verdict.success:
            assert result.verdict.reason
    single, restraint, invoice = results
    assert single.verdict.first_call_exact is not None and invoice.verdict.first_call_exact is None
    figures = build_report({"dev": results}, extra={})["splits"]["dev"]["figures"]
    assert figures["runs"] == 3 and figures["seconds_per_call"] > 0
