#!/usr/bin/env bash
# The whole test suite on CPU: every notebook top to bottom, executed once into the course site (cells flagged
# slow/gpu/notest are skipped, as nbdev_test skips them), then the pytest suite, whose browser test opens that site.
# Run from anywhere in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
# two notebooks run side by side on a 2-core machine: one torch thread each (two each made them 5-10x slower)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== notebooks: each chapter executed once (the notebook test), rendered to _site/html, links checked"
start=$SECONDS
python tools/build_site.py --workers "${NBDEV_WORKERS:-2}"
echo "== notebooks and site: $((SECONDS - start)) s"
echo "== pytest (tests/)"
LD4LG_SITE="$PWD/_site/html" python -m pytest -q tests/ "$@"
