# The hub's playground page (hub/src/lmstudio_hub/playground.html) is tested in a real headless Chromium:
# Debian's package, driven by Playwright's Python API with that executable (Playwright never downloads a
# browser: no `playwright install`). tests/playground/ needs this stamp.
.PHONY: browser-deps test-playground

PLAYWRIGHT_VERSION := 1.65.2
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

$(STAMPS)/browser: $(STAMPS)/core mk/playground.mk
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }
	$(PIP) install -q 'playwright==$(PLAYWRIGHT_VERSION)'
	@mkdir -p $(STAMPS) && touch $@

browser-deps: $(STAMPS)/browser ## Debian's Chromium and Playwright (no browser download), for the playground test
test-playground: $(STAMPS)/browser ## the hub's playground page in real headless Chromium
	$(PY) -m pytest -q tests/playground
