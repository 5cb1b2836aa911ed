"""``python -m lmstudio_agent.eval``: the eval commands without the main CLI."""

from .cli import main

main()
