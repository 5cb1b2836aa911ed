# Cloudflare Worker (cloudflare/): wrangler and the Node 22 it needs, pinned by cloudflare/package-lock.json, and
# the real Workers Python SDK (pure Python; it cannot import outside the runtime) whose API the in-process tests'
# stand-ins are checked against. Its pin matches the dev group of cloudflare/pyproject.toml.
.PHONY: worker-deps worker-build

WORKER_DIR := cloudflare
WORKERS_RUNTIME_SDK := workers-runtime-sdk==1.9.5

$(STAMPS)/worker: $(STAMPS)/core $(WORKER_DIR)/package.json $(WORKER_DIR)/package-lock.json mk/worker.mk
	cd $(WORKER_DIR) && npm ci --no-audit --no-fund
	$(PIP) install -q --no-deps '$(WORKERS_RUNTIME_SDK)'
	@mkdir -p $(STAMPS) && touch $@

worker-deps: $(STAMPS)/worker ## wrangler and Node 22 (npm ci) and the Workers Python SDK

# Place the core package into cloudflare/python_modules/ (pywrangler's vendor folder), run
# `wrangler deploy --dry-run --outdir cloudflare/dist` (failing on any error), then check the bundle carries
# src/entry.py and an exact copy of the core package.
worker-build: $(STAMPS)/worker ## wrangler deploy --dry-run, with the core package in the bundle
	$(PY) $(WORKER_DIR)/bundle.py build --outdir $(WORKER_DIR)/dist
