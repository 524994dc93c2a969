# The two commands README.md opens with. Both set everything up first (idempotent).
PROFILE ?= vmware/esxi-6.5
PYTEST_ARGS ?=

.PHONY: setup run test bench fuzz storage-matrix clean-cache

setup:
	bash scripts/setup.sh

# On guestcompat's patched QEMU when `make setup` could build it (else stock QEMU, said so).
run: setup
	@if .venv/bin/guestcompat qemu show >/dev/null 2>&1; then q=patched; else q=stock; \
	  echo "run: the patched QEMU is not built; booting on stock QEMU"; fi; \
	  .venv/bin/guestcompat run $(PROFILE) --qemu $$q

test: setup
	.venv/bin/python -m pytest -n auto $(PYTEST_ARGS)

# Issue 13's standing fuzz targets at full size: >= 10,000 examples per target, tallies printed at the end
# (examples, valid results, project errors, internal errors: must be 0). FUZZ_EXAMPLES / FUZZ_JOBS override.
FUZZ_EXAMPLES ?= 10000
FUZZ_JOBS ?= 2
fuzz: setup
	GUESTCOMPAT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) .venv/bin/python -m pytest tests/fuzz -n $(FUZZ_JOBS) -q -p no:cacheprovider $(PYTEST_ARGS)

# Issue 20's boot matrix in full: the imported Debian guest from its own disk on every VMware
# controller, on the patched 7.2 and 10.0 builds and stock QEMU (the suite boots the patched 7.2 row).
storage-matrix: setup
	GUESTCOMPAT_STORAGE_MATRIX=full .venv/bin/python -m pytest tests/integration/test_storage_matrix.py -n 1 -rP -q $(PYTEST_ARGS)

bench: setup
	.venv/bin/python bench/boot.py

clean-cache:
	rm -rf "$${GUESTCOMPAT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/guestcompat}"
