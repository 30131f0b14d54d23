#!/usr/bin/env bash
# AG News with the shipped recipe (one H200 call, ~7 minutes). Carry .whl and .data; wheels installed to /tmp/site.
#   ae + ld4lg: the shipped autoencoder fine-tuned on the train split (tools/corpus_recipe_job.py: 96 tokens), the
#               train split encoded, a class-conditional denoiser (course preset, DIFF_STEPS, compiled, whole-step graph),
#               the pipeline built
#   ar:         beside it, the autoregressive baseline (course preset, the shipped 32k tokenizer), class-conditional
# then samples of both (tools/sample_corpora.py: 3 seeds, w = 1 and 2) into $OUT, scored on a CPU by
# tools/evaluate_samples.py --corpus ag_news-local. CPU smoke test:
#   DEVICE=cpu PRESET=tiny AE_STEPS=2 DIFF_STEPS=4 AR_STEPS=2 N_RECON=3 N_PER_CLASS=2 OUT=/tmp/agsmoke \
#   RUNS=/tmp/agsmoke_runs bash tools/gpu_job_agnews.sh
set -uo pipefail
export OUT=${OUT:-/tmp/out} RUNS=${RUNS:-/tmp/runs}; mkdir -p $OUT $RUNS
export LD4LG_DATA=${LD4LG_DATA:-$PWD/.data} PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
C=ag_news-local; LM=ld4lg_edu/assets/default_model/autoencoder/lm; R=$RUNS/$C; PRESET=${PRESET:-course}
FAST="--compile --cuda-graph"; [ "${DEVICE:-cuda}" = cpu ] && FAST=""
cli="python3 -m ld4lg_edu"; t0=$(date +%s)
ld4lg() {
  python3 tools/corpus_recipe_job.py $C $RUNS &&
  $cli encode --ae $R/ae --corpus $C --split train --out $R/latents.safetensors &&
  $cli train-diffusion --preset $PRESET --latents $R/latents.safetensors --steps ${DIFF_STEPS:-20000} --batch-size 256 \
      --lr 3e-4 $FAST --out $R/diffusion &&
  $cli build --ae $R/ae --denoiser $R/diffusion/ema_denoiser --corpus $C --dtype float32 --out $R/pipeline; }
(time ld4lg) > $OUT/ld4lg.log 2>&1 &
(time $cli train-ar --preset $PRESET --corpus $C --tokenizer $LM --steps ${AR_STEPS:-3000} --out $R/ar) > $OUT/ar.log 2>&1 &
wait
echo "trained after $(( $(date +%s) - t0 )) s"
python3 tools/sample_corpora.py $RUNS --corpora $C --guidance 1 2 --n-per-class ${N_PER_CLASS:-125} \
    --out $OUT/samples_recipe.json > $OUT/sample.log 2>&1
echo "sampled after $(( $(date +%s) - t0 )) s"
source tools/job_common.sh; pack_results agnews_results
