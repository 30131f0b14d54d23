#!/usr/bin/env bash
# Two chained device calls for a longer stage 2 of the shipped model with the whole-step CUDA graph.
#   bash tools/gpu_job_stage2_more.sh train STEPS   the CUDA tests, the shipped-size training bench, then stage 2 for
#                                                   STEPS steps (checkpoints every 1,000; killed by the call's limit, resumed)
#   bash tools/gpu_job_stage2_more.sh finish STEPS  resume to STEPS, build the pipeline, evaluation samples (w = 1, 2;
#                                                   seeds 0, 1; 200 per class), the paper-size bench rows, the pipeline bench
set -uo pipefail
out=${OUT:-/tmp/out}; phase=${1:?train|finish}; steps=${2:?steps}; ae=ld4lg_edu/assets/default_model/autoencoder
source tools/job_common.sh; job_setup
cli="python3 -m ld4lg_edu"
bench="python3 bench/bench_training.py --device cuda --compile on --stage1 off"
train() {  # $1: seconds allowed
  [ -f /tmp/latents.safetensors ] || $cli encode --ae $ae --corpus wordnet --out /tmp/latents.safetensors >> $out/stage2.log 2>&1
  resume=""; ls /tmp/diffusion/step_* >/dev/null 2>&1 && resume="--resume"
  (time timeout "$1" $cli train-diffusion --preset course --steps $steps --batch-size 256 --lr 3e-4 --compile --cuda-graph \
     --latents /tmp/latents.safetensors --out /tmp/diffusion $resume) >> $out/stage2.log 2>&1
  ls -d /tmp/diffusion/step_* | tail -1 >> $out/stage2.log
}
if [ "$phase" = train ]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fast_training.py > $out/gpu_tests.log 2>&1
  tail -3 $out/gpu_tests.log
  timeout 150 $bench --archs shipped --batch-sizes 256 --modes step-graph --out $out/bench_shipped.txt > $out/shipped.log 2>&1
  train 330
else
  train ${TRAIN_S:-200}
  $cli build --ae $ae --denoiser /tmp/diffusion/ema_denoiser --corpus wordnet --dtype bfloat16 --out /tmp/pipeline >> $out/stage2.log 2>&1
  timeout 120 python3 - >> $out/stage2.log 2>&1 <<'PY'
import json, os
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipe = LatentDiffusionPipeline.from_pretrained("/tmp/pipeline", device="cuda")
samples = {"ld4lg": {f"w={w},seed={s}": {n: pipe.sample(200, label=n, guidance_scale=w, steps=25, seed=s).texts
                                         for n in pipe.label_names} for w in (1.0, 2.0, 3.0) for s in (0, 1)}}
json.dump(samples, open(os.environ.get("OUT", "/tmp/out") + "/samples_more.json", "w"))
print(samples["ld4lg"]["w=2.0,seed=0"]["animal"][:4])
PY
  cp /tmp/pipeline/denoiser/* $out/ 2>/dev/null
  [ -n "${BENCH:-}" ] && timeout 150 $bench --archs paper --batch-sizes 256 --modes step-graph --out $out/bench_paper.txt > $out/paper.log 2>&1
fi
grep -hE "^(shipped|paper)|real|trained|encoded|step-|Error|error|\[" $out/*.log | tail -20
