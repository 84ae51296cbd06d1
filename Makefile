# One entry point for set-up, the demo and the tests. Every target installs what it needs.
PY := .venv/bin/python
DEBS := espeak-ng chromium chromium-driver ffmpeg

.PHONY: install demo test lint format

install: .venv/.installed

.venv/.installed: pyproject.toml
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# MODEL=DIR serves a saved model folder instead of the shipped default (make demo MODEL=runs/micro).
demo: install
	.venv/bin/omni demo $(if $(MODEL),--model $(MODEL))

test: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
