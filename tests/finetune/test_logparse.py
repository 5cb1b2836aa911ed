"""Reading Axolotl's output: the data file is the tail of a real `axolotl train` run on SmolLM2-135M (8 steps)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lmstudio_finetune.logparse import TrainLogParser

SAMPLE = (Path(__file__).parent / "data" / "axolotl-train-smollm2.log").read_text(encoding="utf-8")
LOSSES = [1.628, 1.483, 0.7428, 0.2595, 0.06229, 0.04025, 0.00425, 0.001771]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_steps_and_losses_whatever_the_chunking(seed):
    rng = random.Random(seed)
    parser = TrainLogParser()
    position = 0
    while position < len(SAMPLE):
        size = rng.randint(1, 400)
        parser.feed(SAMPLE[position:position + size])
        position += size
    parser.close()
    assert parser.losses == list(zip(range(1, 9), LOSSES, strict=True))
    assert (parser.step, parser.total) == (8, 8)
    assert parser.train_loss == pytest.approx(0.5277)


def test_data_preparation_bars_are_not_training_steps():
    parser = TrainLogParser()
    parser.feed("\rTokenizing Prompts (num_proc=2):  50%|█████     | 2/4 [00:00<00:00,  5.12 examples/s]\r")
    parser.feed("\rLoading weights: 100%|██████████| 272/272 [00:00<00:00, 23710.92it/s]\n")
    assert (parser.step, parser.total, parser.losses) == (0, None, [])
    assert parser.feed("\r 12%|█▎        | 1/8 [00:01<00:07,  1.13s/it]\r") is True
    assert (parser.step, parser.total) == (1, 8)


def test_tail_keeps_finished_lines_not_redraws():
    parser = TrainLogParser(tail_lines=3)
    parser.feed("line one\n\r 10%|█| 1/10 [00:01<00:09]\r 20%|██| 2/10 [00:02<00:08]\r")
    parser.feed("Traceback (most recent call last):\n")
    parser.feed("  File \"x.py\", line 1\nValueError: boom\n")
    assert parser.tail.splitlines() == ['Traceback (most recent call last):', '  File "x.py", line 1',
                                        "ValueError: boom"]
