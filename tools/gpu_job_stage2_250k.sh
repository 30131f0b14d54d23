#!/usr/bin/env bash
# Three chained device calls: the shipped stage-2 recipe (scale 0.5) trained for the paper's 250,000 steps of 256.
#   bash tools/gpu_job_stage2_250k.sh start    encode the latents, train until TRAIN_S seconds (default 560)
#   bash tools/gpu_job_stage2_250k.sh more     resume, train until TRAIN_S seconds
#   bash tools/gpu_job_stage2_250k.sh finish   resume to the end, build it, samples at 10, 15 and 25 steps (seeds 0-2)
# The run lives in /tmp/runs/long250k on the device, so the calls must follow each other while the machine is warm.
set -uo pipefail
out=${OUT:-/tmp/out}; phase=${1:?start|more|finish}
source tools/job_common.sh; job_setup
long="python3 tools/gpu_job_stage2_variant.py long250k --schedule-scale 0.5 --steps 250000 --seeds 0 1 2"
long="$long --sample-steps 10 15 25"
case "$phase" in
  start)  timeout "${TRAIN_S:-560}" $long > "$out/long_$phase.log" 2>&1 ;;
  more)   timeout "${TRAIN_S:-560}" $long --resume > "$out/long_$phase.log" 2>&1 ;;
  finish) $long --resume > "$out/long_$phase.log" 2>&1 ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
ls -d /tmp/runs/long250k/diffusion/step_* 2>/dev/null | tail -2
tr '\r' '\n' < "$out/long_$phase.log" | grep -vE "^\s*$|Warning|warn" | tail -6
ls -la "$out"
