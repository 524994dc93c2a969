# The two commands README.md opens with. Both set everything up first (idempotent).
PROFILE ?= vmware/esxi-6.5
PYTEST_ARGS ?=

.PHONY: setup run test bench clean-cache

setup:
	bash scripts/setup.sh

# On guestcompat's patched QEMU when `make setup` could build it (else stock QEMU, said so).
run: setup
	@if .venv/bin/guestcompat qemu show >/dev/null 2>&1; then q=patched; else q=stock; \
	  echo "run: the patched QEMU is not built; booting on stock QEMU"; fi; \
	  .venv/bin/guestcompat run $(PROFILE) --qemu $$q

test: setup
	.venv/bin/python -m pytest -n auto $(PYTEST_ARGS)

bench: setup
	.venv/bin/python bench/boot.py

clean-cache:
	rm -rf "$${GUESTCOMPAT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/guestcompat}"
