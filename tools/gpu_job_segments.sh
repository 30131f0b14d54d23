#!/usr/bin/env bash
# Chapter 09c's device call (one H200, ~5 minutes): segment-level vs one-latent diffusion on ROCStories, plus a segment
# model of TinyStories paragraphs. Carry .whl (fastcore, rouge-score, nltk; installed to /tmp/site) and .data (corpora).
# All side by side on the one GPU:
#   seg:        `ld4lg train-segments` over the shipped sentence autoencoder (32 x 64 per sentence, S = 6), SEG_STEPS
#   seg_flops:  the same for SINGLE_STEPS / 6 steps: the one-latent denoiser's training FLOPs (192 vs 32 latent vectors)
#   single:     a story autoencoder (32 x 64 per story, 96 tokens; the shipped LM, its decoder trained too), then the
#               same denoiser (course preset) on one latent per story for SINGLE_STEPS
#   tiny:       a segment model of TinyStories paragraphs (S = 8)
#   ar:         the AR baseline (course preset, the shipped tokenizer): the coherence yardstick (perplexity of a story)
#   curve:      BLEU vs number of sentences for the shipped (one-latent) autoencoder
# then samples (3 seeds x N), held-out reconstructions and curves, as texts in $OUT/segments_results.tgz, scored on a
# CPU by tools/segments_results.py. Sizes and PARTS (a subset of the six) from the environment. Smoke test on a CPU:
#   DEVICE=cpu PRESET=tiny AE_PRESET=tiny SEG_STEPS=4 SINGLE_STEPS=24 AE_STEPS=2 AR_STEPS=2 TINY_STEPS=4 N=3 ELIMIT=6 \
#   LIMIT=40 BATCH=8 AR_PRESET=tiny OUT=/tmp/segsmoke RUNS=/tmp/segsmoke_runs bash tools/gpu_job_segments.sh
# As run (two calls, nbs/results/segments_*.json): 1) all six parts at the defaults, TRAIN_S=225: seg (3500 steps,
# final loss 0.293), seg_flops (1000, 0.382), tiny (1500, 0.210) and the AR (1200) trained, the curve and the AR
# perplexities written; the samples were lost to a device bug in FixedSegments (since fixed), and the story autoencoder
# ran at 9 it/s beside the others, so `single` did not finish. 2) PARTS="seg ar" SEG_STEPS=1833 AR_STEPS=800
# TRAIN_S=110: seg trained (loss 0.335), its sampling did not finish in TRAIN_S. 3) PARTS="seg_flops single ar"
# TRAIN_S=430 (300 s). 4) the same with SINGLE_STEPS=36000 TRAIN_S=490 PPL_S=40 (470 s): the table of chapter 09c.
set -uo pipefail
export OUT=${OUT:-/tmp/out} RUNS=${RUNS:-/tmp/runs}; mkdir -p $OUT $RUNS
export LD4LG_DATA=${LD4LG_DATA:-$PWD/.data} PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export LM=ld4lg_edu/assets/default_model/autoencoder/lm
export SEG=${SEG_STEPS:-3500} SINGLE=${SINGLE_STEPS:-6000} AE=${AE_STEPS:-1500}
export N=${N:-500} BATCH=${BATCH:-128} PRESET=${PRESET:-course} AE_PRESET=${AE_PRESET:-course}
export FAST="--compile --cuda-graph" LIM=${ELIMIT:+--limit $ELIMIT} TLIM=${LIMIT:+--limit $LIMIT}
[ "${DEVICE:-cuda}" = cpu ] && FAST=""
cli="python3 -m ld4lg_edu"; x="python3 tools/segments_experiment.py"
seg() {  # name corpus max_segments steps warmup
  python3 -m ld4lg_edu train-segments --corpus $2 --max-segments $3 --preset $PRESET --steps $4 --warmup-steps $5 \
      --batch-size $BATCH --lr 3e-4 $FAST $TLIM --out $RUNS/$1 &&
  python3 tools/segments_experiment.py seg $RUNS/$1 --name $1 --corpus $2 --n $N $LIM --fixed 3 5 \
      --out $OUT/segments_$1.json; }
single() {
  python3 -m ld4lg_edu train-ae --preset $AE_PRESET --lm $LM --corpus rocstories-local --num-latents 32 \
      --latent-dim 64 --max-length 96 --train-decoder --steps $AE --batch-size 256 --lr 3e-4 --eval-texts 1 \
      --out $RUNS/story_ae || return
  python3 -m ld4lg_edu encode --ae $RUNS/story_ae --corpus rocstories-local \
      --out $RUNS/story_latents.safetensors || return
  python3 -m ld4lg_edu train-diffusion --preset $PRESET --latents $RUNS/story_latents.safetensors --steps $SINGLE \
      --batch-size $BATCH --lr 3e-4 $FAST --out $RUNS/single || return
  python3 -m ld4lg_edu build --ae $RUNS/story_ae --denoiser $RUNS/single/ema_denoiser --corpus rocstories-local \
      --dtype float32 --out $RUNS/single_pipe || return
  python3 tools/segments_experiment.py single $RUNS/single_pipe --name single --n $N $LIM \
      --out $OUT/segments_single.json
  python3 tools/segments_experiment.py curve $RUNS/story_ae --name story_ae $LIM --out $OUT/segments_curve_story.json; }
T=${TRAIN_S:-225}; t0=$(date +%s)
bg() { local name=$1; shift; (time timeout $T bash -c "$(declare -f seg single); $*") > $OUT/$name.log 2>&1 & }
parts=" ${PARTS:-seg seg_flops tiny single ar curve} "; on() { [[ "$parts" == *" $1 "* ]]; }
on seg && bg seg "seg seg rocstories-local 6 $SEG $(( SEG / 10 ))"
on seg_flops && bg seg_flops "seg seg_flops rocstories-local 6 $(( SINGLE / 6 )) $(( SINGLE / 60 ))"
on tiny && bg tiny "seg tiny tinystories-local 8 ${TINY_STEPS:-1500} 300"
on single && bg single "single"
on ar && bg ar "$cli train-ar --preset ${AR_PRESET:-course} --corpus rocstories-local --tokenizer $LM \
    --steps ${AR_STEPS:-1200} --out $RUNS/ar"
on curve && bg curve "$x curve ld4lg_edu/assets/default_model/autoencoder --name sentence_ae $LIM \
    --out $OUT/segments_curve_sentence.json"
wait
echo "all trained and sampled after $(( $(date +%s) - t0 )) s"
timeout ${PPL_S:-35} $x ppl $RUNS/ar --n $N $LIM --out $OUT/segments_ppl.json \
    --samples $OUT/segments_seg.json $OUT/segments_seg_flops.json $OUT/segments_single.json > $OUT/ppl.log 2>&1
echo "done after $(( $(date +%s) - t0 )) s"
source tools/job_common.sh; pack_results segments_results
