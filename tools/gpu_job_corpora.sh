#!/usr/bin/env bash
# The device calls behind the AG News / ROCStories results (three calls of < 10 minutes on one H100).
# Carried: .data (the corpora, copied from ../shared/data), .runs/corpora (what the previous call brought back). Usage: [AE_STEPS=.. DIFF_STEPS=.. CORPORA=..] bash tools/gpu_job_corpora.sh 1|2|3
# As run: `1`; `AE_STEPS=6000 ... 2`; `DIFF_STEPS=5500 ... 3` (ROCStories kept); `CORPORA=ag_news-local DIFF_STEPS=10000
# LATENT_TIMEOUT=500 ... 3`, which hit its limit at step ~9,700, then `ld4lg train-diffusion ... --resume` to 10,000 on the
# same machine (see nbs/results/corpora_models.json).
#   1: tokenizer, then the course LM (128 tokens) and both AR baselines side by side; AR samples
#   2: the autoencoders (32×64) of both corpora
#   3: encode, denoisers, pipelines; LD4LG samples
set -uo pipefail
phase=${1:?phase}; out=${OUT:-/tmp/out}; runs=/tmp/runs
export LD4LG_DATA=$PWD/.data PYTHONPATH=$PWD LM_STEPS=${LM_STEPS:-3000}
mkdir -p $runs && [ -d .runs/corpora ] && cp -r .runs/corpora/. $runs/
job() { (time timeout "$1" bash tools/train_corpora.sh $runs "$2") > $out/$2.log 2>&1; }
case "$phase" in
  1) job 60 tokenizer
     job 400 ar & job 420 lm; wait
     timeout 100 python3 tools/sample_corpora.py $runs --which ar --out $out/samples_ar.json > $out/sample_ar.log 2>&1
     tar -C $runs -cf $out/lm.tar lm/config.json lm/generation_config.json lm/model.safetensors lm/tokenizer.json \
         lm/tokenizer_config.json lm/pretrain_summary.json tokenizer ;;
  2) job ${AE_TIMEOUT:-530} ae
     # (train-ae's reconstruction scores need rouge-score, absent from the GPU image: they are computed on a CPU afterwards)
     tar -C $runs --exclude checkpoints -cf $out/ae.tar $(cd $runs && ls -d */ae) ;;
  3) job ${LATENT_TIMEOUT:-420} latent
     tar -C $runs -cf - $(cd $runs && ls -d */pipeline */diffusion/step_*/state.json) | split -b 15m - $out/pipelines.tar.part-
     timeout ${SAMPLE_TIMEOUT:-150} python3 tools/sample_corpora.py $runs --which ld4lg --corpora ${CORPORA:-ag_news-local rocstories-local} \
         --out $out/samples_ld4lg.json > $out/sample_ld4lg.log 2>&1 ;;
esac
for f in $out/*.log $runs/*/*.log; do echo "== $f"; tr '\r' '\n' < "$f" | grep -E "real|trained|saved|encoded|written|reconstruction|Error|error|it/s" | grep -v "^\s*$" | tail -4; done
ls -la $out
