#!/usr/bin/env bash
# One device call: distil the shipped model (tools/distill_default.sh, sizes from the environment), then evaluation
# samples (200 per class, seeds 0 and 1, w = 1 and 2, or the guidance scales in W="1 2.5") of every kept student
# and, unless STUDENTS_ONLY=1, of the teacher's DPM-Solver++(2M) at 10 and 25 steps, all drawn from the distilled
# pipeline as saved, with the wall time of each set on the GPU. Results under $OUT: samples_distilled.json (keys
# 'variant=distilled4,w=1.0,seed=0', as tools/evaluate_samples.py reads them), distill.log, and (KEEP_PIPELINE=1) the
# saved pipeline as pipeline.tar.part-* (15 MB parts; a call brings back 64 MiB at most) or (KEEP_STUDENT=N) the
# N-step student's folder as student_N/. RESUME=1 continues a run an earlier call's DISTILL_S cut short (the machine
# still warm); a call that ends before the students are done says so and skips the samples. TEACHER_EVAL="10 25":
# the teacher's step counts.
set -uo pipefail
out=${OUT:-/tmp/out}
timeout ${DISTILL_S:-330} bash tools/distill_default.sh /tmp/distilled ${RESUME:+--resume} > $out/distill.log 2>&1
if [ ! -f /tmp/distilled/pipeline/pipeline.json ]; then
  grep -vE "^train:" $out/distill.log | tail -8; echo "distillation not finished: call again with RESUME=1"; exit 0
fi
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
timeout ${SAMPLE_S:-150} python3 - >> $out/distill.log 2>&1 <<'PY'
import json, os, time
import torch
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipe = LatentDiffusionPipeline.from_pretrained("/tmp/distilled/pipeline", device="cuda")
runs = [("distilled", steps) for steps in sorted(pipe.students)]
if not os.environ.get("STUDENTS_ONLY"):
    runs += [("dpmpp2m", int(steps)) for steps in os.environ.get("TEACHER_EVAL", "10 25").split()]
samples, path = {"ld4lg": {}, "timing": {}}, os.environ["OUT"] + "/samples_distilled.json"
for sampler, steps in runs:
    for w in map(float, os.environ.get("W", "1 2").split()):
        for s in (0, 1):
            key = f"variant={sampler}{steps},w={w},seed={s}"
            torch.cuda.synchronize(); t = time.perf_counter()
            samples["ld4lg"][key] = {n: pipe.sample(200, label=n, guidance_scale=w, sampler=sampler, steps=steps,
                                                    seed=s).texts for n in pipe.label_names}
            torch.cuda.synchronize(); samples["timing"][key] = round(time.perf_counter() - t, 2)
            with open(path + ".tmp", "w") as f: json.dump(samples, f)
            os.replace(path + ".tmp", path)  # what is done survives a kill
            print(key, samples["timing"][key], samples["ld4lg"][key]["animal"][:2], flush=True)
PY
if [ -n "${KEEP_STUDENT:-}" ]; then
  cp -r /tmp/distilled/pipeline/student/steps_$KEEP_STUDENT $out/student_$KEEP_STUDENT
fi
if [ -n "${KEEP_PIPELINE:-}" ]; then
  (cd /tmp/distilled && tar -cf - pipeline) | split -b 15m - $out/pipeline.tar.part-
fi
ls -la $out; grep -vE "^train:" $out/distill.log | tail -40
