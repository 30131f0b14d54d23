#!/usr/bin/env bash
# One device call: distil the shipped model (tools/distill_default.sh, sizes from the environment), then evaluation samples
# of the 4-step student and of the teacher's 25-step DPM-Solver++(2M) (w = 1, 2; seeds 0, 1; 200 per class) and the
# wall time per sample on the GPU, all under $OUT; the 4-step student's files and pipeline.json come back.
set -uo pipefail
out=${OUT:-/tmp/out}
timeout ${DISTILL_S:-330} bash tools/distill_default.sh /tmp/distilled > $out/distill.log 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
timeout 100 python3 - >> $out/distill.log 2>&1 <<'PY'
import json, os, time
import torch
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipe = LatentDiffusionPipeline.from_pretrained("/tmp/distilled/pipeline", device="cuda")
samples, timing = {"ld4lg": {}}, {}
for sampler, steps in [("distilled", 4), ("distilled", 8), ("distilled", 2), ("dpmpp2m", 25)]:
    if sampler == "distilled" and steps not in pipe.students: continue
    for w in (1.0, 2.0):
        for s in (0, 1):
            torch.cuda.synchronize(); t = time.perf_counter()
            samples["ld4lg"][f"sampler={sampler},steps={steps},w={w},seed={s}"] = {
                n: pipe.sample(200, label=n, guidance_scale=w, sampler=sampler, steps=steps, seed=s).texts for n in pipe.label_names}
            torch.cuda.synchronize(); timing[f"{sampler},{steps},w={w},seed={s}"] = round(time.perf_counter() - t, 2)
samples["timing"] = timing
json.dump(samples, open(os.environ["OUT"] + "/samples_distilled.json", "w"))
print(timing)
PY
cp /tmp/distilled/pipeline/pipeline.json $out/ 2>/dev/null; cp /tmp/distilled/pipeline/student/steps_4/* $out/ 2>/dev/null
ls -la $out; grep -vE "^train:" $out/distill.log | tail -25
