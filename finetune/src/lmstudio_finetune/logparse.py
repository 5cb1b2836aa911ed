"""Reading Axolotl's training output: the step counter of the trainer's progress bar and the logged losses.

The Hugging Face trainer draws a bare tqdm bar (`` 62%|██████▎   | 5/8 [00:07<00:04,  1.65s/it]``, redrawn after
``\\r``) and prints each log as a Python dict (``{'loss': '1.628', 'grad_norm': ..., 'epoch': '0.5'}``). Bars with
a description (``Tokenizing Prompts: 100%|...``) belong to data preparation and are ignored.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass, field

__all__ = ["TrainLogParser"]

_BAR = re.compile(r"^\s*\d{1,3}%\|[^|]*\|\s*(\d+)/(\d+)\s*\[")
_DICT = re.compile(r"\{'(?:loss|train_runtime)'.*\}")


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass
class TrainLogParser:
    """Feed it raw output chunks; it keeps the step, the total, the losses and the last lines."""

    tail_lines: int = 60
    step: int = 0
    total: int | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    train_loss: float | None = None
    _buffer: str = ""
    _tail: deque[str] = field(default_factory=deque)

    def feed(self, text: str) -> bool:
        """Consume output; True when the step or the losses changed."""
        self._buffer += text
        changed = False
        while True:
            match = re.search(r"[\r\n]", self._buffer)
            if match is None:
                break
            segment, self._buffer = self._buffer[: match.start()], self._buffer[match.end():]
            changed |= self._segment(segment, newline=match.group() == "\n")
        return changed

    def close(self) -> None:
        if self._buffer:
            self._segment(self._buffer, newline=True)
            self._buffer = ""

    @property
    def tail(self) -> str:
        return "\n".join(self._tail)

    def _segment(self, segment: str, *, newline: bool) -> bool:
        changed = False
        bar = _BAR.match(segment)
        if bar:
            self.step, self.total = int(bar.group(1)), int(bar.group(2))
            changed = True
        found = _DICT.search(segment)
        if found:
            try:
                logged = ast.literal_eval(found.group())
            except (ValueError, SyntaxError):
                logged = None
            if isinstance(logged, dict):
                loss = _number(logged.get("loss"))
                if loss is not None:
                    self.losses.append((self.step, loss))
                    changed = True
                if "train_loss" in logged:
                    self.train_loss = _number(logged.get("train_loss"))
        # Progress redraws (ended by \r) are not worth keeping in the tail; finished lines and logged dicts are.
        if segment.strip() and (newline or found):
            self._tail.append(segment.rstrip())
            while len(self._tail) > self.tail_lines:
                self._tail.popleft()
        return changed
