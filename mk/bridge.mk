# AI Bridge (core/src/lmstudio_agent/bridge/): the hub and agent side are part of core (the `bridge` extra:
# websockets, uvicorn), so the core stamp is all they need.
.PHONY: bench-bridge test-bridge

# Round trips through the hub to echo agents (a second process) on loopback; figures to $(BENCH_DIR)/bridge.json.
bench-bridge: $(STAMPS)/core ## bridge round trips to echo agents on loopback (tasks/s, p99)
	$(PY) bench/bridge_bench.py --out $(BENCH_DIR)/bridge.json
	@$(BENCH_SUMMARY) bridge

test-bridge: $(STAMPS)/core ## the bridge's tests
	$(PY) -m pytest -q tests/bridge
