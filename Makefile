# The two commands README.md opens with. Both set everything up first (idempotent).
PROFILE ?= vmware/esxi-6.5
PYTEST_ARGS ?=

.PHONY: setup run test bench clean-cache

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/guestcompat run $(PROFILE)

test: setup
	.venv/bin/python -m pytest -n auto $(PYTEST_ARGS)

bench: setup
	.venv/bin/python bench/boot.py

clean-cache:
	rm -rf "$${GUESTCOMPAT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/guestcompat}"
