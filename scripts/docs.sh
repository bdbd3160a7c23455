#!/usr/bin/env bash
# Build the documentation site into site/ (sets up .venv first, with the docs extra). --strict: a
# warning (a broken link or anchor, a bad reference, a docstring griffe cannot read) fails the build.
# docs/hooks.py generates the algorithm pages, the CLI reference and the benchmarks page from the code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg NO_MKDOCS_2_WARNING=1  # (the second: Material's notice about its successor)
.venv/bin/python -m mkdocs build --strict --clean --site-dir site "$@"
