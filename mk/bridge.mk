# AI Bridge (core/src/lmstudio_agent/bridge/): the hub and agent side are part of core (the `bridge` extra:
# websockets, uvicorn), so the core stamp is all they need.
.PHONY: bench-bridge bench-serverless-bridge test-bridge

# Round trips through the hub to echo agents (a second process) on loopback; figures to $(BENCH_DIR)/bridge.json.
bench-bridge: $(STAMPS)/core ## bridge round trips to echo agents on loopback (tasks/s, p99)
	$(PY) bench/bridge_bench.py --out $(BENCH_DIR)/bridge.json
	@$(BENCH_SUMMARY) bridge

# The same round trip through each hub's /execute, in one run: the process hub, the Worker's Durable Objects and
# the Lambda's API Gateway WebSocket routes (on the tests' stand-ins and moto: our code, not the cloud's).
bench-serverless-bridge: $(STAMPS)/core $(STAMPS)/lambda ## bridge /execute round trip: process hub vs Worker DOs vs API Gateway WS (stand-ins)
	$(PY) bench/serverless_bridge_bench.py --out $(BENCH_DIR)/serverless_bridge.json
	@$(BENCH_SUMMARY) serverless_bridge

test-bridge: $(STAMPS)/core ## the bridge's tests
	$(PY) -m pytest -q tests/bridge tests/serverless_bridge
