"""``finetune-tools``' orchestration: fine-tune a small model on tool calls, export it, and measure it.

- :mod:`.cli`: the ``lmstudio-agent finetune-tools`` command (rows, training, export, measurement, report);
- :mod:`.data`: the training rows, built from suite and corpus tasks with the agent's own prompts;
- :mod:`.job`: the training job, run by file path by the fine-tuning environment's Python (which has the core and
  ``lmstudio_finetune`` but not this package, so it imports neither this package nor its siblings).

Nothing is imported here: importing the package costs nothing, and the job stays runnable on its own.
"""
