# Shortcuts for developers. A fresh machine may lack make: the README's two
# commands are the scripts themselves (scripts/setup.sh, scripts/test.sh).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test slow bench bench-real bench-site bench-all bench-store bench-fleet
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	./scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/btfhub demo

test:
	./scripts/test.sh

slow: setup
	$(BIN)/pytest -q -m slow --run-slow tests/slow

bench: setup
	$(BIN)/python bench/catalog_bench.py

# An OCI store against docker-registry on 127.0.0.1: git size, push throughput,
# the 20,000-kernel no-op reconcile in OCI mode.
bench-store: setup
	$(BIN)/python bench/store_bench.py

# A real Debian kernel (apt-get download, ~283 MB, cached in ~/.cache/btfhub-real)
# built by btfhub and by the classic download/dpkg-deb/pahole/tar pipeline.
bench-real: setup
	$(BIN)/python bench/real_kernel_bench.py

# What a whole hub costs: 8 kernels with the real package layout (the real
# Debian package under 8 unames, made once and cached beside it), served at
# unlimited, 200 and 50 MB/s; btfhub --jobs 1, 2, 4 against classic 1, 2, 4
# wide; kernels per hour, CPU against the floor of its irreducible steps.
# About an hour on a 2-core machine; figures in bench/results/fleet-<date>.json.
bench-fleet: setup
	$(BIN)/python bench/fleet_bench.py

# The coverage site of a 20,000-kernel hub in headless chromium (scripts/setup.sh
# installs it): how soon a search answers, and the site's size.
bench-site: setup
	$(BIN)/python bench/site_bench.py

# Every performance goal in one run: the real kernel three times, the
# 20,000-kernel hub (git, then the OCI store), its coverage site, then the
# fleet; exits non-zero when any misses a goal. Over an hour on 2 cores.
bench-all: setup
	status=0; \
	$(BIN)/python bench/real_kernel_bench.py --runs 3 || status=1; \
	$(BIN)/python bench/catalog_bench.py || status=1; \
	$(BIN)/python bench/store_bench.py || status=1; \
	$(BIN)/python bench/site_bench.py || status=1; \
	$(BIN)/python bench/fleet_bench.py || status=1; \
	exit $$status
