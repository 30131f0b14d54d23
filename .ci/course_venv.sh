#!/usr/bin/env bash
# The course as a pip user gets it: a fresh venv holding only `.[course]` (CPU torch first, as .ci/run installs it),
# the chapters copied out of the installed package by `ld4lg course`, and every one of them executed top to bottom
# through nbclient on CPU (tools/build_site.py --nbs: the notebook test's skip flags; no corpora folder, no repo on the
# path). pip's cache is the one .ci/run filled, so the wheels come from it.
#   bash .ci/course_venv.sh                        # every chapter
#   bash .ci/course_venv.sh 00_core 04_noise_schedule   # a few
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
start=$SECONDS
WORK="${TMPDIR:-/tmp}/ld4lg-course-ci"
VENV="$WORK/venv"
rm -rf "$WORK"
mkdir -p "$WORK"
python3 -m venv "$VENV"
PY="$VENV/bin/python"
echo "== course venv: install torch (CPU) and .[course] only"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q "$REPO[course]"
"$PY" -m pip check
echo "   installed in $((SECONDS - start)) s"
cd "$WORK"  # away from the checkout: the chapters must import the installed package
"$PY" -c "import ld4lg_edu, sys; p = ld4lg_edu.__file__; print('ld4lg_edu from', p); sys.exit(p.startswith('$REPO/'))"
"$VENV/bin/ld4lg" course --dir "$WORK/course" --no-lab
if [ "$#" -gt 0 ]; then only=(--only "$@"); else only=(); fi
echo "== course venv: every chapter through nbclient (executed copies: $WORK/out/executed)"
# a pip user has no corpora folder: LD4LG_DATA is left unset and the copy lies outside the checkout
env -u LD4LG_DATA HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 \
  "$PY" "$REPO/tools/build_site.py" --nbs "$WORK/course" --no-render --out "$WORK/out" --workers 2 "${only[@]}"
echo "course venv: done in $((SECONDS - start)) s"
