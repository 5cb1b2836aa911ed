"""The cache's rules where they live (cache.py): when a request may use the cache (``no-cache``, ``no-store``,
``Pragma``, side effects) and the one codec of an entry, which a JSON answer and a stream share."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.endpoint.cache import decode_entry, encode_entry, is_cacheable, read_events, wants_fresh, write_events
from lmstudio_agent.agent.events import RunEvent, events_from_transcript, transcript_of
from lmstudio_agent.agent.messages import AgentMessage


@pytest.mark.parametrize("headers", [
    {"Cache-Control": "no-cache"},
    {"Cache-Control": "no-store"},
    {"cache-control": "max-age=0, No-Store"},
    {"CACHE-CONTROL": " no-cache ,private"},
    {"Pragma": "no-cache"},
    {"pragma": " No-Cache "},
])
def test_a_request_that_asks_for_a_fresh_answer_skips_the_cache(headers):
    assert wants_fresh(headers)
    assert not is_cacheable(has_side_effects=False, headers=headers)


@pytest.mark.parametrize("headers", [
    {},
    {"Cache-Control": "max-age=60"},
    {"Cache-Control": "no-transform"},
    {"Pragma": "cache"},
    {"X-Cache-Control": "no-store"},
    {"Pragma": "no-store"},  # Pragma knows only no-cache
])
def test_other_headers_leave_the_cache_on(headers):
    assert not wants_fresh(headers)
    assert is_cacheable(has_side_effects=False, headers=headers)


def test_a_side_effect_is_never_cached_whatever_the_headers():
    assert not is_cacheable(has_side_effects=True, headers={})
    assert not is_cacheable(has_side_effects=True, headers={"Cache-Control": "max-age=60"})


def _run() -> list[RunEvent]:
    transcript = [AgentMessage(type="action", tool="echo", args={"text": "hi"}),
                  AgentMessage(type="result", tool="echo", content="hi"),
                  AgentMessage(type="result", content="It said hi.")]
    return [RunEvent.step_start(0), RunEvent.text("It said"), *events_from_transcript(transcript)[1:]]


def test_an_entry_is_the_runs_events_with_its_transcript_and_reads_back_the_same():
    events = _run()
    raw = encode_entry(events)
    stored = json.loads(raw)
    assert stored["result"] == [m.to_dict() for m in transcript_of(events)]
    assert decode_entry(raw) == events


def test_an_older_entry_holding_only_the_transcript_is_still_read():
    transcript = transcript_of(_run())
    for raw in (json.dumps([m.to_dict() for m in transcript]), json.dumps({"result": [m.to_dict() for m in transcript]})):
        assert transcript_of(decode_entry(raw)) == transcript


class _Broken:
    async def get(self, key):
        raise RuntimeError("down")

    async def put(self, key, value, ttl_seconds):
        raise RuntimeError("down")


async def test_a_broken_cache_or_entry_never_fails_a_request():
    assert await read_events(_Broken(), "k") is None
    await write_events(_Broken(), "k", _run(), 60)  # logged, not raised

    class Garbage(_Broken):
        async def get(self, key):
            return "{not json"

    assert await read_events(Garbage(), "k") is None
    assert await read_events(None, "k") is None
