#!/usr/bin/env bash
# One device call: the shipped denoiser (120,000 steps, scale-0.5 cosine) trained STEPS more steps of 256 from its own
# weights on a fresh warm-up + cosine schedule (peak lr 1e-4), then built and sampled at 15 DPM-Solver++(2M) steps,
# w = 1 and 2.5, seeds 0-2 (200 per class): $OUT/samples_warm.json, the denoiser in $OUT/warm/, history_warm.json.
#   STEPS=85000 bash tools/gpu_job_warm.sh
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/job_common.sh; job_setup
python3 tools/gpu_job_stage2_variant.py warm --schedule-scale 0.5 --steps "${STEPS:-85000}" --seeds 0 1 2 \
  --sample-steps 15 --init ld4lg_edu/assets/default_model/denoiser --lr 1e-4 > "$out/warm.log" 2>&1
tr '\r' '\n' < "$out/warm.log" | grep -vE "^\s*$|Warning|warn" | tail -8
ls -la "$out" "$out/warm"
