"""``python -m lmstudio_gateway``: the same CLI as ``lmstudio-gateway``."""

from lmstudio_gateway.cli import main

if __name__ == "__main__":
    main()
