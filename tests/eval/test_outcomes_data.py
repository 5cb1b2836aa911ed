"""The outcome evaluation's splits (issue 22, part 3): generated once from recorded seeds, committed as package data."""

from __future__ import annotations

import json

from lmstudio_eval.outcomes.generator import (
    DATA_DIR, GENERATOR_VERSION, MANIFEST, SPLIT_SEEDS, STYLES, dumps, generate, manifest, split_path,
)


def test_the_committed_splits_are_what_the_generator_writes_for_their_seeds():
    recorded = json.loads((DATA_DIR / MANIFEST).read_text(encoding="utf-8"))
    assert recorded == manifest()
    assert recorded["generator_version"] == GENERATOR_VERSION
    for split, seed in SPLIT_SEEDS.items():
        assert recorded["splits"][split]["seed"] == seed
        assert split_path(split).read_text(encoding="utf-8") == dumps(generate(split, seed))


def test_the_generator_is_deterministic_and_the_seeds_give_different_splits():
    assert dumps(generate("dev")) == dumps(generate("dev"))
    assert generate("dev") != generate("test")
    assert SPLIT_SEEDS["dev"] != SPLIT_SEEDS["test"]


def test_each_split_has_sixty_tasks_or_more_each_worded_five_ways():
    for split in SPLIT_SEEDS:
        tasks = generate(split)
        assert len(tasks) >= 60
        for task in tasks:
            assert [w["style"] for w in task["wordings"]] == list(STYLES)
            assert len({w["instruction"] for w in task["wordings"]}) >= 3, task["id"]
