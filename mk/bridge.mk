# AI Bridge (core/src/lmstudio_agent/bridge/): the hub and agent side are part of core (the `bridge` extra:
# websockets, uvicorn), so the core stamp is all they need.
.PHONY: bench-bridge test-bridge

# Round trips through the hub to echo agents (a second process) on loopback; figures to bench/results/bridge.json.
bench-bridge: $(STAMPS)/core
	$(PY) bench/bridge_bench.py --out bench/results/bridge.json

test-bridge: $(STAMPS)/core
	$(PY) -m pytest -q tests/bridge
