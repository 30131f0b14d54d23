#!/usr/bin/env bash
# Two chained device calls: the shipped stage-2 recipe (scale 0.5) trained twice as long (120,000 steps), and sampler
# rows of the shipped model.
#   bash tools/gpu_job_stage2_120k.sh start    DDPM rows (100 and 250 steps) and DPM-Solver++(2M) 15 / 20 steps of the
#                                                shipped model, then the 120,000-step run until the call's limit
#   bash tools/gpu_job_stage2_120k.sh finish   resume it, build it, samples at 10, 15 and 25 steps (seeds 0-2)
set -uo pipefail
out=${OUT:-/tmp/out}; phase=${1:?start|finish}
source tools/job_common.sh; job_setup
steps="python3 tools/gpu_job_steps.py --seeds 0 1 2"
long="python3 tools/gpu_job_stage2_variant.py long --schedule-scale 0.5 --steps 120000 --seeds 0 1 2"
long="$long --sample-steps 10 15 25"
if [ "$phase" = start ]; then
  $steps --sampler ddpm --steps 100 250 --seeds 0 1 --out samples_ddpm.json > $out/ddpm.log 2>&1
  $steps --steps 15 20 --out samples_steps1520.json > $out/steps.log 2>&1
  timeout ${TRAIN_S:-420} $long > $out/long_start.log 2>&1
  ls -d /tmp/runs/long/diffusion/step_* | tail -2
else
  $long --resume > $out/long_finish.log 2>&1
fi
for f in $out/*.log; do echo "== $f"; tr '\r' '\n' < $f | grep -vE "^\s*$|Warning|warn" | tail -4; done
ls -la $out
