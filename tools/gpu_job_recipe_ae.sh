#!/usr/bin/env bash
# One device call: tools/corpus_recipe_job.py (stage 1 of the shipped recipe, the LM's decoder trained too) on AG News
# and ROCStories side by side, each under a time limit (AE_S, default 520 s). A run the limit cuts short is scored from
# its last checkpoint (a resume to that step trains nothing more), so the call always brings back
# $OUT/recipe_ae_<corpus>.json for tools/recipe_ae_rows.py. Carry .whl and .data. Sizes from the environment:
#   AE_STEPS=9000 AE_LR=2e-4 COMPILE=1 AE_S=520 bash tools/gpu_job_recipe_ae.sh
set -uo pipefail
export OUT=${OUT:-/tmp/out} LD4LG_DATA=${LD4LG_DATA:-$PWD/.data} TRAIN_DECODER=1
source tools/job_common.sh; job_setup
runs=/tmp/runs/recipe_ae; [ -n "${RESUME:-}" ] || rm -rf $runs  # a new run unless RESUME=1
one() {  # one corpus: compiled, else (compile failed) uncompiled; then the rescue from the last checkpoint
  local c=$1 end=$(( $(date +%s) + ${AE_S:-520} ))
  timeout $(( end - $(date +%s) )) python3 tools/corpus_recipe_job.py $c $runs > $OUT/$c.log 2>&1
  rc=$?  # 124: the time limit; any other failure: try again uncompiled
  if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then
    echo "failed (exit $rc); again uncompiled" >> $OUT/$c.log
    COMPILE=0 timeout $(( end - $(date +%s) )) python3 tools/corpus_recipe_job.py $c $runs >> $OUT/$c.log 2>&1
  fi
  if [ ! -f $OUT/recipe_ae_$c.json ]; then
    last=$(ls -d $runs/$c/ae/checkpoints/step_* 2>/dev/null | sed 's/.*step_0*//' | sort -n | tail -1)
    echo "cut short; scoring the checkpoint at step ${last:-none}" >> $OUT/$c.log
    [ -n "$last" ] && AE_STEPS=$last RESUME=1 python3 tools/corpus_recipe_job.py $c $runs >> $OUT/$c.log 2>&1
  fi
}
for c in ag_news-local rocstories-local; do one $c & done; wait
for c in ag_news-local rocstories-local; do tr '\r' '\n' < $OUT/$c.log | grep -vE "it/s|^\s*$|[Ww]arn" | tail -4; done
ls -la $OUT
