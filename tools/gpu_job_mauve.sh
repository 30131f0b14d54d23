#!/usr/bin/env bash
# One H200 call for MAUVE at equal sample counts (chapter 09) and one stage-2 capacity lever:
#   ar:    the autoregressive baseline as in tools/train_default.sh, 200 texts per class, seeds 0-2
#          ($OUT/samples_ar.json)
#   steps: the shipped model, DPM-Solver++(2M) 10 steps (the default), w = 1 and 2.5, seeds 0-2
#          ($OUT/samples_shipped.json)
#   paper: a paper-size denoiser (12 x 768) on the shipped latents for PAPER_STEPS steps, then w = 1 at 10 and 25 steps,
#          seeds 0-1 ($OUT/samples_paper.json). At 38.9 it/s, 8,500 steps beside the AR training passed the 330 s
#          limit while saving; PAPER_STEPS 7000 leaves room
# Scored on a CPU by tools/evaluate_samples.py. Carry .whl.
set -uo pipefail
out=${OUT:-/tmp/out}; ae=ld4lg_edu/assets/default_model/autoencoder; mkdir -p $out /tmp/runs
source tools/job_common.sh; job_setup
cli="python3 -m ld4lg_edu"; t0=$(date +%s)
ar() {  # trained where tools/sample_corpora.py looks for a corpus's baseline
  $cli train-ar --preset course --corpus wordnet --steps 6000 --batch-size 128 --out /tmp/runs/wordnet/ar &&
  python3 tools/sample_corpora.py /tmp/runs --corpora wordnet --which ar --n-per-class 200 --out $out/samples_ar.json
}
(time ar) > $out/ar.log 2>&1 &
python3 tools/gpu_job_steps.py --steps 10 --w 1 2.5 --seeds 0 1 2 --out samples_shipped.json > $out/steps.log 2>&1
echo "shipped sampled after $(( $(date +%s) - t0 )) s"
$cli encode --ae $ae --corpus wordnet --out /tmp/latents.safetensors > $out/paper.log 2>&1
(time timeout ${PAPER_TIMEOUT:-330} $cli train-diffusion --preset paper --steps ${PAPER_STEPS:-7000} --batch-size 256 \
   --lr 2e-4 --compile --cuda-graph --latents /tmp/latents.safetensors --out /tmp/runs/paper) >> $out/paper.log 2>&1
$cli build --ae $ae --denoiser /tmp/runs/paper/ema_denoiser --corpus wordnet --dtype bfloat16 --steps 10 \
   --out /tmp/runs/paper_pipe >> $out/paper.log 2>&1
echo "paper trained after $(( $(date +%s) - t0 )) s"
python3 tools/gpu_job_steps.py --model /tmp/runs/paper_pipe --steps 10 25 --w 1 --out samples_paper.json \
  >> $out/paper.log 2>&1
wait
echo "done after $(( $(date +%s) - t0 )) s"
tr '\r' '\n' < $out/paper.log | grep -E "loss|step|Error|error" | tail -4
pack_results mauve_results
