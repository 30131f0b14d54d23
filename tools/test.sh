#!/usr/bin/env bash
# The whole test suite on CPU: every notebook executed top to bottom once, into the course site (tools/build_site.py:
# cells flagged slow/gpu/notest are skipped, as nbdev_test skips them; the site is rendered and its links checked),
# and, side by side with it on the second core, the pytest suite, whose site test waits for that build and opens it.
# Run from anywhere in the repo. NBDEV_WORKERS=2 runs two notebooks at a time instead (then pytest waits for them).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
# one torch thread per process: a notebook kernel and pytest share the 2 cores (two threads each made them 5-10x slower)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
workers="${NBDEV_WORKERS:-1}"
mkdir -p _site
rm -f _site/site.json
start=$SECONDS
echo "== notebooks: each chapter executed once into _site/html ($workers at a time; log: _site/build.log)"
python tools/build_site.py --workers "$workers" --jobs "$workers" > _site/build.log 2>&1 &
site=$!
trap 'kill "$site" 2>/dev/null || true' EXIT
site_rc=""
if [ "$workers" -gt 1 ]; then site_rc=0; wait "$site" || site_rc=$?; fi  # two kernels already fill two cores
echo "== pytest (tests/)"
pytest_rc=0
LD4LG_SITE="$PWD/_site/html" LD4LG_SITE_STAMP="$PWD/_site/site.json" python -m pytest -q --durations=15 tests/ "$@" \
  | tee _site/pytest.log || pytest_rc=$?
if [ -z "$site_rc" ]; then site_rc=0; wait "$site" || site_rc=$?; fi
trap - EXIT
echo "== notebooks and site (tools/build_site.py, $((SECONDS - start)) s with pytest):"
grep -v "^WARNING clustering" _site/build.log || true
[ "$site_rc" = 0 ] || echo "FAIL: tools/build_site.py exited with $site_rc (a chapter failed, or a link is broken)"
tail -n 1 _site/pytest.log  # pytest's closing line, last
[ "$pytest_rc" = 0 ] && [ "$site_rc" = 0 ]
