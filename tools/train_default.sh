#!/usr/bin/env bash
# The recipe of the shipped default model, as run on one H200 (see the model card in nbs/08_pipeline.ipynb).
# Usage: bash tools/train_default.sh RUNS_DIR stage1|stage2|baseline|sweep
#   stage1:   course LM with a new 32k BPE + autoencoder (ℓ×d_ae = 32×64) + held-out reconstruction scores
#   stage2:   encode the class corpus, train the class-conditional denoiser, assemble the pipeline
#   baseline: the autoregressive baseline on the same corpus
#   sweep:    reconstruction quality vs ℓ and d_ae on the course LM (nbs/results/ae_sweep.json)
set -euo pipefail
runs=${1:?runs dir}; stage=${2:?stage}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cli="python3 -m ld4lg_edu"
case "$stage" in
  stage1)
    $cli train-lm --preset course --vocab-size 32768 --steps 5000 --batch-size 256 --max-length 48 --compile --workers 4 \
        --save-dtype bfloat16 --out "$runs/lm"
    $cli train-ae --preset course --lm "$runs/lm" --num-latents 32 --latent-dim 64 --steps 4000 --batch-size 256 --compile \
        --out "$runs/ae"
    ;;
  stage2)
    $cli encode --ae "$runs/ae" --corpus wordnet --split train --out "$runs/latents.safetensors"
    $cli train-diffusion --preset course --steps 120000 --batch-size 256 --lr 3e-4 --schedule-scale 0.5 --compile \
        --cuda-graph --latents "$runs/latents.safetensors" --out "$runs/diffusion"
    $cli build --ae "$runs/ae" --denoiser "$runs/diffusion/ema_denoiser" --corpus wordnet --steps 15 --dtype bfloat16 \
        --out "$runs/pipeline"
    ;;
  baseline)
    $cli train-ar --preset course --corpus wordnet --steps 6000 --batch-size 128 --out "$runs/ar"
    ;;
  sweep)
    python3 - "$runs" <<'PY'
import sys
from ld4lg_edu.ae_training import ae_sweep
from ld4lg_edu.autoencoder import AutoencoderConfig
from ld4lg_edu.data import load_corpus
from ld4lg_edu.lm import load_lm
lm, tok = load_lm(f"{sys.argv[1]}/lm")
glosses = load_corpus("wordnet-glosses")
ae_sweep(lm, tok, glosses.texts("train"), glosses.texts("test")[:300], num_latents=(4, 8, 16, 32), latent_dims=(8, 16, 32, 64),
         base=AutoencoderConfig.preset("course", lm=f"{sys.argv[1]}/lm", num_latents=32, latent_dim=64),
         out_path=f"{sys.argv[1]}/ae_sweep.json", steps=800, batch_size=256, lr=3e-4, warmup_steps=100)
PY
    ;;
  *) echo "unknown stage $stage"; exit 2 ;;
esac
