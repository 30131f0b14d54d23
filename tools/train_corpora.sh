#!/usr/bin/env bash
# The recipe behind the AG News and ROCStories rows of the results table (chapter 09), as run on one H100.
# The shipped course LM saw only 64-token definitions, so these corpora (news, five-sentence stories: up to
# ~120 tokens) get their own tokenizer and course LM with 128 positions, pretrained on news + stories + definitions.
# Usage: bash tools/train_corpora.sh RUNS_DIR tokenizer|lm|ar|ae|latent
#   tokenizer: byte-level BPE (8,192) on the mixture
#   lm:        course LM (BART text infilling, 128 tokens) on the mixture
#   ar:        the autoregressive baseline on each corpus, same tokenizer
#   ae:        an autoencoder (ℓ×d_ae = 32×64) per corpus on the frozen LM, with held-out reconstruction scores
#   latent:    per corpus: encode the train split, train the denoiser, build the pipeline
# Sizes can be shrunk for a smoke test: PRESET=tiny LM_STEPS=.. AR_STEPS=.. AE_STEPS=.. DIFF_STEPS=..
set -euo pipefail
runs=${1:?runs dir}; stage=${2:?stage}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cli="python3 -m ld4lg_edu"
corpora=${CORPORA:-"ag_news-local rocstories-local"}
mix=${MIX:-ag_news-local+rocstories-local+tinystories-local+wordnet}
preset=${PRESET:-course}
# run one command per corpus side by side on the GPU; fail if any of them failed
each() { local pids=(); for c in $corpora; do mkdir -p "$runs/$c"; "$@" "$c" > "$runs/$c/$stage.log" 2>&1 & pids+=($!); done
         local rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; return $rc; }
case "$stage" in
  tokenizer) $cli train-tokenizer --corpus "$mix" --vocab-size "${VOCAB:-8192}" --out "$runs/tokenizer" ;;
  lm) $cli train-lm --preset "$preset" --corpus "$mix" --tokenizer "$runs/tokenizer" --max-length "${MAX_LEN:-128}" \
          --steps "${LM_STEPS:-2500}" --save-dtype bfloat16 --out "$runs/lm" ;;
  ar) ar() { $cli train-ar --preset "$preset" --corpus "$1" --tokenizer "$runs/tokenizer" --steps "${AR_STEPS:-3000}" --out "$runs/$1/ar"; }
      each ar ;;
  ae) ae() { $cli train-ae --preset "$preset" --lm "$runs/lm" --corpus "$1" --num-latents "${LATENTS:-32}" --latent-dim "${LATENT_DIM:-64}" \
                 --max-length "${MAX_LEN:-128}" --steps "${AE_STEPS:-2500}" --batch-size "${AE_BATCH:-256}" --eval-texts 300 --out "$runs/$1/ae"; }
      each ae ;;
  latent) latent() { $cli encode --ae "$runs/$1/ae" --corpus "$1" --split train --out "$runs/$1/latents.safetensors"
                     $cli train-diffusion --preset "${DIFF_PRESET:-paper}" ${DIFF_SHAPE:---width 256 --depth 8 --heads 4} \
                         --steps "${DIFF_STEPS:-5000}" --batch-size 256 --lr 3e-4 --latents "$runs/$1/latents.safetensors" --out "$runs/$1/diffusion"
                     $cli build --ae "$runs/$1/ae" --denoiser "$runs/$1/diffusion/ema_denoiser" --corpus "$1" --dtype bfloat16 --out "$runs/$1/pipeline"; }
          each latent ;;
  *) echo "unknown stage $stage"; exit 2 ;;
esac
