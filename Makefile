# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both install what is missing first (scripts/setup.sh).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint slow bench bench-real
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	./scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/btfhub demo

lint: setup
	$(BIN)/ruff check generator tests bench
	$(BIN)/ruff format --check generator tests bench
	$(BIN)/mypy generator

test: lint
	$(BIN)/pytest -q

slow: setup
	$(BIN)/pytest -q -m slow --run-slow tests/slow

bench: setup
	$(BIN)/python bench/catalog_bench.py

# A real Debian kernel (apt-get download, ~283 MB, cached in ~/.cache/btfhub-real)
# built by btfhub and by the classic download/dpkg-deb/pahole/tar pipeline.
bench-real: setup
	$(BIN)/python bench/real_kernel_bench.py
