"""Print an API Gateway event (one of lambda/events/*.json) with the client key in its headers, for `sam local invoke`.

    CLIENT_KEY=... python scripts/keyed_event.py lambda/events/execute.json > execute-keyed.json

The key comes from the CLIENT_KEY environment variable, never from the command line (visible in `ps`).
"""

from __future__ import annotations

import json
import os
import sys


def keyed(event: dict, key: str) -> dict:
    """``event`` with ``Authorization: Bearer <key>`` in ``headers`` and ``multiValueHeaders``."""
    headers = {name: value for name, value in (event.get("headers") or {}).items() if name.lower() != "authorization"}
    multi = {name: value for name, value in (event.get("multiValueHeaders") or {}).items()
             if name.lower() != "authorization"}
    headers["Authorization"] = f"Bearer {key}"
    multi["Authorization"] = [f"Bearer {key}"]
    return {**event, "headers": headers, "multiValueHeaders": multi}


def main(argv: list[str]) -> int:
    key = os.environ.get("CLIENT_KEY", "").strip()
    if len(argv) != 1 or not key:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        event = json.load(handle)
    json.dump(keyed(event, key), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
