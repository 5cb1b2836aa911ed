"""The small-model policy: the rules that narrow and fill a very small model's tool calls, as one object.

The constrained mode was built for a 135M model (SmolLM2-135M) that picks a tool's arguments far better than
it picks the tool, and "corrects" values it should copy. Each rule below was kept because it raised that
model's figures on the dev splits (docs/readme/eval.md); none is applied to a model served in the native or
parsed mode, which reads the full tool list and writes its own values. A capable model served in the
constrained mode can switch them off: ``Agent(..., policy=SmallModelPolicy.off())`` (or ``policy=None``).

The plan itself (:mod:`.plan`) is not part of the policy: every mode is held to the steps its goals and
request require. The policy decides only how hard the small model is steered towards them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["SmallModelPolicy"]


@dataclass(frozen=True)
class SmallModelPolicy:
    """Which small-model rules the constrained mode applies.

    Args:
        route: List only the tools the plan names, and offer each round only the current step's tools
            (all tools when the request and goals name none).
        copy_strings: A free string argument takes a span of the conversation's words (or a document
            reference), not any text.
        copy_numbers: A number argument takes a number written in the conversation.
        withhold_unfilled: A tool whose required number, date or identifier the conversation does not hold is
            not offered (the model answers, and can ask for it).
        answer_first_round: When the first round offers the answer in words: ``"unrelated"`` (only when the
            request shares no word with any tool) or ``"always"``.
        hold_answer_mid_plan: Right after a successful call, while the plan has a step left, the answer in
            words is not offered.
        ground_answers: A final answer that states none of the last result's values (or repeats the request)
            is replaced by the result in words (:func:`lmstudio_agent.agent.answers.stated`).
    """

    route: bool = True
    copy_strings: bool = True
    copy_numbers: bool = True
    withhold_unfilled: bool = True
    answer_first_round: Literal["unrelated", "always"] = "unrelated"
    hold_answer_mid_plan: bool = True
    ground_answers: bool = True

    @classmethod
    def off(cls) -> SmallModelPolicy:
        """Every rule switched off: the constrained mode offers every tool, free values and the answer."""
        return cls(route=False, copy_strings=False, copy_numbers=False, withhold_unfilled=False,
                   answer_first_round="always", hold_answer_mid_plan=False, ground_answers=False)

    def but(self, **changes: object) -> SmallModelPolicy:
        """A copy with ``changes`` (field name -> value).

        Args:
            changes: The fields to change, by name.
        """
        return replace(self, **changes)  # type: ignore[arg-type]


OFF = SmallModelPolicy.off()
