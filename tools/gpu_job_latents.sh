#!/usr/bin/env bash
# Device call for the latent-space ablation (chapter 03b): every stage-1 variant trains its autoencoder on the shipped
# course LM, then the same stage-2 recipe as the shipped model (paper preset at 8 x 256, 8,000 steps, batch 256), then
# tools/latent_ablation.py scores it; variants run side by side on one GPU. Results (JSON, logs) under $OUT.
# Usage: bash tools/gpu_job_latents.sh AE_STEPS VARIANT...   (a variant is name:flags, flags comma-separated)
set -uo pipefail
out=${OUT:-/tmp/out}; runs=/tmp/runs; ae_steps=${1:?ae steps}; shift
source tools/job_common.sh; job_setup
cli="python3 -m ld4lg_edu"; lm=$PWD/ld4lg_edu/assets/default_model/autoencoder/lm
variant() {
  local name=$1 flags=${2//,/ } d=$runs/$1
  if [ "$name" = shipped ]; then python3 tools/latent_ablation.py default --name shipped --out $out/shipped.json; return; fi
  $cli train-ae --preset course --lm $lm --steps $ae_steps --batch-size 256 --compile $flags --out $d/ae \
  && $cli encode --ae $d/ae --corpus wordnet --out $d/latents.safetensors \
  && $cli train-diffusion --preset paper --width 256 --depth 8 --heads 4 --steps 8000 --batch-size 256 --lr 3e-4 --compile \
       --latents $d/latents.safetensors --out $d/diffusion \
  && $cli build --ae $d/ae --denoiser $d/diffusion/ema_denoiser --corpus wordnet --dtype bfloat16 --out $d/pipeline \
  && python3 tools/latent_ablation.py $d/pipeline --name $name --out $out/$name.json
}
for v in "$@"; do (time variant ${v%%:*} "${v#*:}") > $out/${v%%:*}.log 2>&1 & done
wait
grep -hE "held-out|trained|validity|reconstruction|real|Error" $out/*.log | cut -c1-400
