# dezoomify_nb — `make demo` and `make test` work on a fresh machine (they create .venv themselves).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR := demo-output

.PHONY: install core serve demo test test-zarr34 lint bench browser conformance-tools clean lab voila
# zarr >= 3.2 needs Python >= 3.12: a second venv checks the engine on the newest zarr when a 3.12 exists
PY312  := $(shell for p in python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do \
            $$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && echo $$p && break; done)
VENV312 := .venv312

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make test` (and lint, bench): the package with everything the tests need (~1 GB: Playwright, JupyterLab…)
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# `make demo` / `make serve`: the package and its own dependencies only
CORE_STAMP := $(VENV)/.core-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.core-*
	touch $@

core: $(CORE_STAMP)

# the sample tile server in the foreground, with a IIIF manifest, a museum page, a bulk list and commands to paste
serve: core
	$(BIN)/python -m dezoomify_nb.testing serve

demo: core
	@mkdir -p $(DEMO_DIR)
	@rm -f $(DEMO_DIR)/server.url
	@$(BIN)/python -m dezoomify_nb.testing serve --port 0 --ready-file $(DEMO_DIR)/server.url >$(DEMO_DIR)/server.log 2>&1 & \
	  pid=$$!; trap "kill $$pid 2>/dev/null" EXIT; \
	  for i in $$(seq 1 100); do [ -s $(DEMO_DIR)/server.url ] && break; sleep 0.1; done; \
	  base=$$(cat $(DEMO_DIR)/server.url); \
	  echo "Sample tile server running at $$base (127.0.0.1 only)"; \
	  rm -f $(DEMO_DIR)/sample.png; \
	  $(BIN)/dezoomify-nb --largest "$$base/zoomify/ImageProperties.xml" $(DEMO_DIR)/sample.png && \
	  $(BIN)/python -c "from PIL import Image; im = Image.open('$(DEMO_DIR)/sample.png'); print('Downloaded', im.size[0], 'x', im.size[1], im.mode)" && \
	  echo "The sample image is in $$(pwd)/$(DEMO_DIR)/sample.png" && \
	  echo "More to try: 'make serve' runs this server with a IIIF manifest, a museum page and a bulk list," && \
	  echo "and prints commands to paste into another terminal (the image prompt, page discovery, --bulk)."

lint: install
	$(BIN)/ruff check dezoomify_nb tests bench
	$(BIN)/lint-imports --no-cache  # the import contracts of pyproject.toml: layers, no net in dezoomers…

# Headless Chromium for tests/browser (Debian's package; Playwright drives it, no browser download)
browser:
	@[ -x /usr/bin/chromium ] || (apt-get update && apt-get install -y chromium)

# Third-party software of tests/conformance (Debian's packages, installed only when missing): libvips'
# CLI (vips dzsave producers, vips/vipsheader readers), GDAL's CLI (gdalinfo, gdal_translate), the IIPImage
# server behind lighttpd (started by the tests on 127.0.0.1), libmagic (python-magic, imported by
# iiif-validator). OpenSlide and the IIIF validator come from the test extra.
CONFORMANCE_DEBS := libvips-tools gdal-bin iipimage-server lighttpd libmagic1 python3-gdal
conformance-tools:
	@missing=""; for p in $(CONFORMANCE_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  [ -z "$$missing" ] || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing)

# pytest-xdist workers of `make test` (auto: one per core; the Chromium and Jupyter tests share one worker,
# see tests/conftest.py); `make test TEST_WORKERS=0` runs the suite in one process
TEST_WORKERS ?= auto
test: install lint test-zarr34 browser conformance-tools
	REQUIRE_BROWSER=1 REQUIRE_CONFORMANCE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# what tests/core and tests/e2e/test_api.py need beyond the package (pytest's plugins of pyproject's addopts and
# ini options, the modules they importorskip): a fresh install takes ~30 s, the whole test extra ~80 s
ZARR34_TEST_DEPS := "pytest>=8" "pytest-timeout>=2.3" "pytest-xdist>=3.6" "pyproj>=3.6"
test-zarr34:
ifeq ($(PY312),)
	@echo "test-zarr34: no Python 3.12 on this machine; the newest-zarr run is not done"
else
	@[ -x $(VENV312)/bin/python ] || $(PY312) -m venv $(VENV312)
	@$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV312)/bin/python -m pip install --quiet -e ".[fast]" "zarr>=3.4" $(ZARR34_TEST_DEPS)
	@$(VENV312)/bin/python -c "import zarr, sys; print('zarr', zarr.__version__, 'on Python', sys.version.split()[0])"
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider tests/core tests/e2e/test_api.py
endif

bench: install
	$(BIN)/python bench/bench_download.py

# JupyterLab on the notebooks (they start their own sample tile server); `make voila`: the picker as an app
NB_STAMP := $(VENV)/.notebook-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(NB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[notebook]"
	rm -f $(VENV)/.notebook-*
	touch $@

lab: $(NB_STAMP)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --allow-root notebooks/01-quick-start.ipynb

voila: $(NB_STAMP)
	$(BIN)/voila --Voila.ip=127.0.0.1 notebooks/picker.ipynb

clean:
	rm -rf $(VENV) $(VENV312) $(DEMO_DIR) .pytest_cache .ruff_cache
