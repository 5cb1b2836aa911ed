"""The agent: the loop and what it holds.

- :mod:`.loop`: :class:`~.loop.Agent` (the rounds of a run); beside it :mod:`.goals` (:class:`~.goals.Goal`),
  :mod:`.memory` (:class:`~.memory.Memory`), :mod:`.environment` (:class:`~.environment.Environment`, which runs a
  tool), :mod:`.turns` (single rounds, checked, for the evaluation) and :mod:`._streaming` (a run's events as they
  happen); :mod:`.loop` re-exports their names;
- :mod:`.tools`: tools, their argument models and the registry; beside it :mod:`.injection` (the
  :class:`~.injection.ActionContext` a tool receives), :mod:`.docstrings` (descriptions from a docstring) and
  :mod:`._arguments` (a model's arguments decoded, their problems worded); :mod:`.tools` re-exports their names;
- :mod:`.messages`, :mod:`.events`: the transcript and the events a run emits;
- :mod:`.plan`, :mod:`.rounds`: the steps a run must take, and what each round knows;
- :mod:`.answers`, :mod:`.documents`: whether an answer states the result; long inputs by reference.

It talks to a model through :mod:`lmstudio_agent.model` and knows nothing of HTTP (:mod:`lmstudio_agent.endpoint`).
"""
