#!/usr/bin/env bash
# Stage 2 only, longer: the shipped autoencoder's latents, the shipped denoiser recipe (preset course) for STEPS steps
# with the whole-step CUDA graph, then evaluation samples (w = 1, 2; seeds 0, 1; 200 per class) and the new denoiser
# under $OUT. Usage: bash tools/gpu_job_stage2_long.sh STEPS
set -uo pipefail
out=${OUT:-/tmp/out}; steps=${1:?steps}; ae=ld4lg_edu/assets/default_model/autoencoder
source tools/job_common.sh; job_setup
cli="python3 -m ld4lg_edu"
$cli encode --ae $ae --corpus wordnet --out /tmp/latents.safetensors > $out/stage2.log 2>&1
(time $cli train-diffusion --preset course --steps $steps --batch-size 256 --lr 3e-4 --compile --cuda-graph \
   --latents /tmp/latents.safetensors --out /tmp/diffusion) >> $out/stage2.log 2>&1
$cli build --ae $ae --denoiser /tmp/diffusion/ema_denoiser --corpus wordnet --dtype bfloat16 --out /tmp/pipeline >> $out/stage2.log 2>&1
python3 - >> $out/stage2.log 2>&1 <<'PY'
import json, os
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipe = LatentDiffusionPipeline.from_pretrained("/tmp/pipeline", device="cuda")
samples = {"ld4lg": {f"w={w},seed={s}": {n: pipe.sample(200, label=n, guidance_scale=w, steps=25, seed=s).texts
                                         for n in pipe.label_names} for w in (1.0, 2.0) for s in (0, 1)}}
json.dump(samples, open(os.environ.get("OUT", "/tmp/out") + "/samples_long.json", "w"))
print(samples["ld4lg"]["w=2.0,seed=0"]["animal"][:4])
PY
cp /tmp/pipeline/denoiser/* $out/ 2>/dev/null
grep -hE "real|trained|encoded|Error|error|\[" $out/stage2.log | tail -8
