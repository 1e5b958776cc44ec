# make demo: the main job; make test: the tests. Both install what they need first (scripts/setup.sh).

# PlatformIO offline: no weekly upgrade check (a 61 s stall without network), no telemetry.
export PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL = 36500
export PLATFORMIO_SETTING_ENABLE_TELEMETRY = no

VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo bench clean

setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q

# The main job, end to end on the embedded default (QEMU Cortex-M4; `make demo BOARD=stm32f746g-disco`
# builds for that board's flash/SRAM and runs on its QEMU stand-in): stage 1 for the F746 budget, a
# small search (smoke budget) under 64 KB SRAM / 256 KB flash on Fashion-MNIST, its int8 winner as a
# C project, the firmware built offline with PlatformIO, run in QEMU and probed over the serial port.
BOARD ?= qemu-m4
demo: setup
	$(VENV)/bin/tinynas space --board stm32f746g-disco --samples 1000 --plot out/demo/space_cdf.png --json out/demo/space.json
	$(VENV)/bin/tinynas search --sram 64KB --flash 256KB --budget smoke --out out/demo/search
	$(VENV)/bin/tinyengine gen out/demo/search --board $(BOARD) --out out/demo/firmware
	$(VENV)/bin/tinyengine emulate out/demo/firmware --layers --json out/demo/probe.json
	$(VENV)/bin/tinyengine analyze mcunet-in3 --board stm32f746g-disco --quiet --plot out/demo/mcunet-in3_memory.png

# The co-design benchmark suite (not part of the tests): planner vs firmware vs TF-Lite Micro, and
# instructions per inference on the emulated Cortex-M4, for the zoo and sampled networks.
bench: setup
	mkdir -p out/bench
	$(PY) benchmarks/suite.py --json out/bench/suite.json

clean:
	rm -rf out build .pytest_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
