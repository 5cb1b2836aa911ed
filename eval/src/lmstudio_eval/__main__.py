"""``python -m lmstudio_eval``: the eval commands without the main CLI."""

from .cli import main

main()
