"""The agent: the loop and what it holds.

- :mod:`.loop`: :class:`~.loop.Agent` (the rounds of a run), its :class:`~.loop.Goal`, :class:`~.loop.Memory` and
  :class:`~.loop.Environment`;
- :mod:`.tools`: tools, their argument models and the registry;
- :mod:`.messages`, :mod:`.events`: the transcript and the events a run emits;
- :mod:`.plan`, :mod:`.rounds`: the steps a run must take, and what each round knows;
- :mod:`.answers`, :mod:`.documents`: whether an answer states the result; long inputs by reference.

It talks to a model through :mod:`lmstudio_agent.model` and knows nothing of HTTP (:mod:`lmstudio_agent.endpoint`).
"""
