#!/usr/bin/env bash
# One device call behind chapter 09b's QQP results (one H200, about 8 minutes of work). Carried: .whl, .data.
# Speeds seen on an H200 (2026-12-01, first try): AE fine-tuning ~22 steps/s and the AR fine-tuning ~12-35 steps/s
# with both running side by side; that try stopped at the AE's 80 s limit (856 of 1,500 steps), so the limits below
# are the measured times with margin. DIFF_FLAGS="--compile --cuda-graph" replays each denoiser step as a CUDA graph.
#   1. the shipped autoencoder fine-tuned on the 3,900 training questions; reconstruction of held-out test targets
#      before and after (texts only)                                           [tools/seq2seq_job.py ae]
#   2. side by side on the same GPU: the course LM fine-tuned on the training pairs, beam search on valid + test
#                                                                              [tools/seq2seq_job.py ar]
#   3. `ld4lg train-seq2seq`: the course-size source-conditioned denoiser on the training pairs (both directions)
#   4. k = 5 candidates per valid / test source at each w in $WS              [tools/seq2seq_job.py generate]
# Then, on a CPU: python tools/score_seq2seq.py DIR_OF_RETURNED_FILES -> nbs/results/seq2seq_eval.json.
# Smoke test on a CPU: SMOKE=1 OUT=/tmp/out bash tools/gpu_job_seq2seq.sh (tiny sizes, device cpu).
set -uo pipefail
out=${OUT:-/tmp/out}; runs=${RUNS:-/tmp/s2s}; mkdir -p "$out" "$runs"
if [ -n "${SMOKE:-}" ]; then
  export DEVICE=cpu AE_STEPS=2 AE_BATCH=8 N_RECON=3 AR_STEPS=2 AR_BATCH=8 PRESET=tiny DIFF_STEPS=3 DIFF_BATCH=8 N_TEST=3 \
         N_VALID=2 K=2 WS="1 2" AE_TIMEOUT=600 DIFF_TIMEOUT=600 GEN_TIMEOUT=600
else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export LD4LG_DATA=$PWD/.data
fi
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
job="python3 tools/seq2seq_job.py"
(nvidia-smi --query-gpu=name,memory.used --format=csv || echo "no GPU") > $out/seq2seq_job.log 2>&1
timeout ${AR_TIMEOUT:-300} $job ar $runs > $out/ar.log 2>&1 &
ar_pid=$!
timeout ${AE_TIMEOUT:-150} $job ae $runs > $out/ae.log 2>&1
timeout ${DIFF_TIMEOUT:-280} python3 -m ld4lg_edu train-seq2seq --ae $runs/ae --corpus qqp-local --preset ${PRESET:-course} \
    --steps ${DIFF_STEPS:-4000} --batch-size ${DIFF_BATCH:-256} --lr ${DIFF_LR:-3e-4} --device ${DEVICE:-cuda} ${DIFF_FLAGS:-} --out $runs/s2s > $out/train.log 2>&1
timeout ${GEN_TIMEOUT:-140} $job generate $runs > $out/generate.log 2>&1
wait $ar_pid
for f in ae ar train generate; do
  echo "== $f" >> $out/seq2seq_job.log; tr '\r' '\n' < $out/$f.log | grep -vE "^\s*$|Warning|warn" | tail -15 >> $out/seq2seq_job.log
done
cp $runs/s2s/diffusion/ema_denoiser/denoiser.json $out/seq2seq_denoiser.json 2>/dev/null
rm -f $out/ae.log $out/ar.log $out/train.log $out/generate.log
cat $out/seq2seq_job.log; ls -la $out
