# AWS Lambda endpoint (lambda/, template.yaml): Powertools and moto for the handler's tests, the SAM CLI for
# validate/build, and the benchmark against a LiteLLM handler.
.PHONY: lambda-deps lambda-build bench-lambda

# The SAM CLI and LiteLLM pin many packages exactly (click, boto3, pydantic via the SAM translator, ...), so each
# lives in its own venv under .venv/tools: they never move a version in the project's venv, and `make clean` drops them.
TOOLS := $(VENV)/tools
SAM_VENV := $(TOOLS)/sam
SAM := $(SAM_VENV)/bin/sam
LITELLM_VENV := $(TOOLS)/litellm
export SAM_CLI_TELEMETRY := 0

# The handler's imports (Powertools, pydantic, httpx), boto3 and moto for the tests, and the SAM CLI (its own
# venv) for the template tests. boto3 stays below 1.41.6 because the fine-tuning stack's aiobotocore (via s3fs)
# pins botocore <1.41.6; the Lambda runtime brings its own boto3.
$(STAMPS)/lambda: $(STAMPS)/core $(SAM_VENV)/.installed lambda/requirements.txt mk/lambda.mk
	$(PIP) install -q -r lambda/requirements.txt 'boto3>=1.35,<1.41.6' 'moto[dynamodb,secretsmanager]>=5,<6' 'pyyaml>=6'
	ln -sf ../tools/sam/bin/sam $(VENV)/bin/sam   # `sam` on PATH once the venv is activated
	@mkdir -p $(STAMPS) && touch $@

# The first install of each tool takes a minute or more: say so, and let pip show what it fetches.
$(SAM_VENV)/.installed: $(PY)
	@echo "Installing the AWS SAM CLI into $(SAM_VENV) (its own venv; a minute or two, the first time only) ..."
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip --disable-pip-version-check install 'aws-sam-cli>=1.120'
	@touch $@

lambda-deps: $(STAMPS)/lambda ## the Lambda handler's dependencies, moto and the SAM CLI

# Lint the template (cfn-lint through SAM), then build the artifact with the makefile builder (no Docker).
lambda-build: lambda-deps ## sam validate --lint && sam build (no Docker)
	$(SAM) validate --lint --template-file template.yaml
	LAMBDA_PYTHON="$(abspath $(PY))" $(SAM) build --template-file template.yaml

$(LITELLM_VENV)/.installed: $(PY)
	@echo "Installing LiteLLM into $(LITELLM_VENV) (the benchmarks compare against it; about a minute, the first time only) ..."
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip --disable-pip-version-check install 'litellm>=1.40'
	@$(LITELLM_VENV)/bin/python -c 'import importlib.metadata as m; print("litellm", m.version("litellm"), "installed")'
	@touch $@

bench-lambda: lambda-build $(LITELLM_VENV)/.installed ## Lambda handler cold import vs a LiteLLM handler, artifact size
	$(PY) bench/lambda_bench.py --litellm-python $(LITELLM_VENV)/bin/python \
		--artifact .aws-sam/build/AgentFunction --out $(BENCH_DIR)/lambda.json
	@$(BENCH_SUMMARY) lambda
