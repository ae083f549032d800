# Shortcuts for developers. A fresh machine may lack make: the README's two
# commands are the scripts themselves (scripts/setup.sh, scripts/test.sh).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test slow bench bench-real
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

# A real Debian kernel (apt-get download, ~283 MB, cached in ~/.cache/btfhub-real)
# built by btfhub and by the classic download/dpkg-deb/pahole/tar pipeline.
bench-real: setup
	$(BIN)/python bench/real_kernel_bench.py
