# The real JavaScript clients the endpoint tests drive (tests/endpoints/test_real_clients.py): the AI SDK 5 chat
# engine and its OpenAI-compatible provider, pinned by tests/clients/package-lock.json and run by the Node on PATH
# (v20 or later). The openai Python SDK comes with the test tools (requirements/dev.txt).
.PHONY: clients

$(STAMPS)/clients: tests/clients/package.json tests/clients/package-lock.json mk/clients.mk
	cd tests/clients && npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

clients: $(STAMPS)/clients ## the AI SDK packages the real-client tests run with Node (npm ci in tests/clients)
