# Two commands do all the set-up on a fresh machine:
#   make demo   -> builds the environments, runs the demo frame through the bundled model
#   make test   -> builds the environments, runs the whole test suite (both Blender versions)
SHELL := /bin/bash
PY311 ?= python3.11
PY313 ?= $(shell pyenv prefix 3.13.0 2>/dev/null)/bin/python
VENV := .venv
VENV313 := .venv313
PIP_FLAGS := -q --disable-pip-version-check

.PHONY: demo test test-core test-blender45 test-blender52 bench addon clean

$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt
	@command -v $(PY311) >/dev/null || { echo "error: $(PY311) not found (Python 3.11 is needed for torch 2.13.0 and bpy 4.5)"; exit 1; }
	$(PY311) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements/dev.txt
	touch $@

$(VENV313)/.installed: requirements/blender52.txt
	@test -x "$(PY313)" || { echo "error: Python 3.13 not found at '$(PY313)'; set PY313=/path/to/python3.13"; exit 1; }
	$(PY313) -m venv $(VENV313)
	$(VENV313)/bin/pip install $(PIP_FLAGS) -r requirements/blender52.txt
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python -m neural_core demo --out out/demo_side_by_side.png

addon: $(VENV)/.installed
	$(VENV)/bin/python build_addon.py --out dist

test-core: $(VENV)/.installed $(VENV313)/.installed  # some core tests check Blender 5.x in a subprocess
	$(VENV)/bin/python -m pytest -q tests

test-blender45: $(VENV)/.installed addon
	$(VENV)/bin/python -m pytest -q blender_tests

test-blender52: $(VENV313)/.installed addon
	$(VENV313)/bin/python -m pytest -q blender_tests

test: test-core test-blender45 test-blender52

bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks

clean:
	rm -rf $(VENV) $(VENV313) dist out
