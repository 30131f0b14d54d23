#!/usr/bin/env bash
# Distil the shipped default model into few-step students on one CUDA GPU (chapter 07a): a guidance round (w in
# [1, 3] becomes an input, at the teacher's 64 DDIM steps), then students for 32, 16, 8, 4, 2 and 1 steps, trained on
# the wordnet corpus encoded with the shipped autoencoder. Writes OUT/pipeline (the default pipeline + students for
# 1, 2, 4, 8 steps, weights in bf16), OUT/latents.safetensors (the encoded corpus), OUT/distill/ (checkpoints,
# finished students, distill.json).
# Usage: bash tools/distill_default.sh OUT [--resume]        (--resume continues a killed run from its checkpoints)
# Time on one H200 (whole-step CUDA graph, batch 256), from a 2-round x 1000-step check: loading + encoding the corpus
# ~20 s; a halving round whose teacher needs classifier-free guidance (two passes) ~63 it/s, one whose teacher is a
# student (one pass) ~76 it/s. With the guidance round first, every halving round has a student teacher: the default
# 7 rounds x 2500 steps should take about 5 minutes in all.
# Sizes can be overridden: ROUNDS=6 TEACHER_STEPS=64 STEPS_PER_ROUND=2500 BATCH=256 LR=1e-4 KEEP=1,2,4,8 GUIDANCE=1,3
set -euo pipefail
out=${1:?usage: bash tools/distill_default.sh OUT [--resume]}
resume=${2:-}
if [ -n "$resume" ] && [ "$resume" != "--resume" ]; then echo "unknown argument $resume (only --resume)" >&2; exit 2; fi
if ls .whl/*.whl >/dev/null 2>&1; then  # a machine without the project's requirements: the carried wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
mkdir -p "$out"
python3 - "$out" "$resume" <<'PY'
import os, sys, time
import torch
from ld4lg_edu.pipeline_students import distill_pipeline

out, resume = sys.argv[1], sys.argv[2] == "--resume"
if not torch.cuda.is_available():
    sys.exit("tools/distill_default.sh needs a CUDA GPU (tests/test_distill.py runs its path on a CPU, tiny pipeline)")
sizes = dict(rounds=int(os.environ.get("ROUNDS", 6)), teacher_steps=int(os.environ.get("TEACHER_STEPS", 64)),
             steps_per_round=int(os.environ.get("STEPS_PER_ROUND", 2500)), batch_size=int(os.environ.get("BATCH", 256)),
             lr=float(os.environ.get("LR", 1e-4)),
             keep_steps=tuple(int(s) for s in os.environ.get("KEEP", "1,2,4,8").split(",")))
print(f"distilling the default model into {out}: {sizes}, resume={resume}, on {torch.cuda.get_device_name()}",
      flush=True)
start, last = time.perf_counter(), [0.0, 0]

def progress(step, model, history):
    "One line every 500 steps: which student, its loss, steps per second since the last line."
    if step % 500 and step != sizes["steps_per_round"]: return
    now = time.perf_counter()
    rate = (step - last[1]) / (now - last[0]) if step > last[1] and last[0] else float("nan")
    print(f"[{now - start:6.0f} s] {model.steps:2d}-step student  step {step:5d}  loss {history[-1]['loss']:.4g}  "
          f"{rate:5.1f} it/s", flush=True)
    last[:] = [now, 0 if step == sizes["steps_per_round"] else step]

guidance = tuple(float(w) for w in os.environ.get("GUIDANCE", "1,3").split(","))  # [w_min, w_max] the students take
pipe = distill_pipeline("default", out, corpus="wordnet", guidance_range=guidance, resume=resume, cuda_graph=True,
                        save_dtype="bfloat16", device="cuda", callbacks=[progress], **sizes)
print(f"[{time.perf_counter() - start:6.0f} s] wrote {out}/pipeline with students for {sorted(pipe.students)} steps",
      flush=True)

labels = [name for name in pipe.label_names for _ in range(16)]
for sampler, steps in [("dpmpp2m", 25)] + [("distilled", s) for s in sorted(pipe.students)]:
    pipe.sample(len(labels), label=labels, sampler=sampler, steps=steps, guidance_scale=2.0, seed=1)  # warm-up
    torch.cuda.synchronize(); t = time.perf_counter()
    result = pipe.sample(len(labels), label=labels, sampler=sampler, steps=steps, guidance_scale=2.0, seed=0)
    torch.cuda.synchronize()
    print(f"{sampler:9s} {steps:2d} steps: {len(labels)} samples at w=2 in {time.perf_counter() - t:.2f} s; "
          f"animal: {result.texts[:2]}; location: {result.texts[-2:]}", flush=True)
PY
