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
	@mkdir -p $(STAMPS) && touch $@

$(SAM_VENV)/.installed: $(PY)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip --disable-pip-version-check install -q 'aws-sam-cli>=1.120'
	@touch $@

lambda-deps: $(STAMPS)/lambda

# Lint the template (cfn-lint through SAM), then build the artifact with the makefile builder (no Docker).
# LAMBDA_MCP=1 adds the MCP SDK to the artifact (for McpConfigSecretName; docs/readme/mcp.md).
LAMBDA_MCP ?= 0
lambda-build: lambda-deps
	$(SAM) validate --lint --template-file template.yaml
	LAMBDA_PYTHON="$(abspath $(PY))" LAMBDA_MCP="$(LAMBDA_MCP)" $(SAM) build --template-file template.yaml

$(LITELLM_VENV)/.installed: $(PY)
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip --disable-pip-version-check install -q 'litellm>=1.40'
	@touch $@

bench-lambda: lambda-build $(LITELLM_VENV)/.installed
	$(PY) bench/lambda_bench.py --litellm-python $(LITELLM_VENV)/bin/python \
		--artifact .aws-sam/build/AgentFunction --out bench/results/lambda.json
