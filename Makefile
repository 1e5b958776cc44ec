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

demo: setup
	$(VENV)/bin/tinynas space --board stm32f746g-disco --samples 1000 --plot out/demo/space_cdf.png --json out/demo/space.json
	$(VENV)/bin/tinyengine analyze mcunet-in3

# The co-design benchmark suite (not part of the tests): planner vs firmware vs TF-Lite Micro, and
# instructions per inference on the emulated Cortex-M4, for the zoo and sampled networks.
bench: setup
	mkdir -p out/bench
	$(PY) benchmarks/suite.py --json out/bench/suite.json

clean:
	rm -rf out build .pytest_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
