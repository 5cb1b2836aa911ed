"""Checks of a real model's run through an endpoint: the right tool ran, and the answer is right."""

from __future__ import annotations

import json
from typing import Any


def assert_sentiment_run(transcript: list[dict[str, Any]], label: str) -> None:
    """``analyze_sentiment`` ran first and found ``label``, and the run's final answer is words that agree with it:
    it may say ``label`` or paraphrase it ("I'm glad you love it"), but never names another label."""
    shown = json.dumps(transcript)[:2000]
    actions = [m for m in transcript if m["type"] == "action"]
    assert actions and actions[0]["tool"] == "analyze_sentiment", shown
    results = [m for m in transcript if m["type"] == "result" and m.get("tool") == "analyze_sentiment"]
    assert results and json.loads(results[0]["content"])["sentiment"] == label, shown
    final = transcript[-1]
    assert final["type"] == "result" and "tool" not in final, shown
    answer = final["content"].lower()
    assert answer.strip() and not answer.lstrip().startswith("{"), shown
    others = {"positive", "negative", "neutral"} - {label}
    assert not any(other in answer for other in others), shown
