#!/usr/bin/env bash
# Device calls for the stronger-course-LM rows of the latent-space ablation (chapter 03b): new course LMs (wider and/or
# with a larger BPE vocabulary), an autoencoder on each, the shipped stage-2 recipe, and tools/latent_ablation.py.
# Every step is skipped when its output exists and training resumes, so a second call continues where the first stopped.
# Usage: bash tools/gpu_job_lm.sh SECONDS   (results under $OUT; runs under /tmp/runs)
set -uo pipefail
out=${OUT:-/tmp/out}; runs=/tmp/runs; deadline=$(( $(date +%s) + ${1:?seconds} ))
source tools/job_common.sh; job_setup
cli="python3 -m ld4lg_edu"; mkdir -p $runs $out
left() { echo $(( deadline - $(date +%s) )); }
run() { local t; t=$(left); [ "$t" -gt 20 ] && timeout "$t" "$@"; }
lm() {  # name preset vocab-flag
  [ -f $runs/$1/lm/config.json ] || run $cli train-lm --preset $2 $3 --steps 5000 --batch-size 256 --max-length 48 \
    --compile --workers 4 --save-dtype bfloat16 --resume --out $runs/$1/lm
}
variant() {  # name lm-name ae-flags
  local d=$runs/$1 lmdir=$runs/$2/lm
  { [ -f $d/ae/autoencoder.json ] || run $cli train-ae --preset course --lm $lmdir --num-latents 32 --latent-dim 64 \
      --steps 4000 --batch-size 256 --compile $3 --resume --out $d/ae; } \
  && { [ -f $d/latents.safetensors ] || run $cli encode --ae $d/ae --corpus wordnet --out $d/latents.safetensors; } \
  && { [ -f $d/diffusion/ema_denoiser/denoiser.json ] || run $cli train-diffusion --preset paper --width 256 --depth 8 \
      --heads 4 --steps 8000 --batch-size 256 --lr 3e-4 --compile --resume --latents $d/latents.safetensors --out $d/diffusion; } \
  && { [ -f $d/pipeline/pipeline.json ] || run $cli build --ae $d/ae --denoiser $d/diffusion/ema_denoiser --corpus wordnet \
      --dtype bfloat16 --out $d/pipeline; } \
  && { [ -f $out/$1.json ] || run python3 tools/latent_ablation.py $d/pipeline --name $1 --guidance 2.0 --out $out/$1.json; }
}
[ -n "${CHECK_GRAPH:-}" ] && python3 bench/bench_training.py --device cuda --archs shipped --batch-sizes 256 --compile on \
  --modes step-graph --stage1 off --fit-steps 300 > $out/graph-check.log 2>&1 &
lm l32k course-l "--vocab-size 32768" > $out/lm-l32k.log 2>&1 &
lm c32k course "--vocab-size 32768" > $out/lm-c32k.log 2>&1 &
wait
variant l32k l32k "" > $out/l32k.log 2>&1 &
variant l32k-robust l32k "--latent-noise 1.0 --feature-mask 0.2" > $out/l32k-robust.log 2>&1 &
variant c32k c32k "" > $out/c32k.log 2>&1 &
wait
cat $runs/*/lm/pretrain_summary.json 2>/dev/null
grep -hE "trained|held-out|validity|reconstruction|Error|error" $out/*.log | cut -c1-300
tar czf $out/runs-small.tar.gz -C $runs --exclude='checkpoints' --exclude='*.safetensors' . 2>/dev/null
