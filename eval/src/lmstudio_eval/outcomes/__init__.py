"""The outcome evaluation (issue 22, part 3): whole agent runs judged by what they did.

A yardstick apart from the tool-calling suite and corpus: its own generator (:mod:`.generator`), tools and state
(:mod:`.world`), a ``dev`` and a ``test`` split generated once with recorded seeds (package data
``outcomes_*.jsonl``), a runner that sends every wording of every task through ``Agent.run`` (:mod:`.runner`), and
checks in code of the state the run left and the answer it gave (:mod:`.checks`).
"""
