#!/usr/bin/env bash
# One device call: distil the shipped model (tools/distill_default.sh, sizes from the environment), then evaluation
# samples (200 per class, seeds 0 and 1) of every kept student and of the teacher's DPM-Solver++(2M) at 10 and 25
# steps (not with STUDENTS_ONLY=1), at w = 1 and 2, all drawn from the distilled pipeline as saved; the teacher at 25
# steps, w = 2, also from the shipped pipeline, so the saved copy can be compared text by text. Wall time per sample set
# on the GPU. Results under $OUT: samples_distilled.json, distill.log, and (KEEP_PIPELINE=1) the saved pipeline as
# pipeline.tar.part-* (15 MB parts; a call brings back 64 MiB at most).
set -uo pipefail
out=${OUT:-/tmp/out}
timeout ${DISTILL_S:-330} bash tools/distill_default.sh /tmp/distilled > $out/distill.log 2>&1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
timeout ${SAMPLE_S:-150} python3 - >> $out/distill.log 2>&1 <<'PY'
import json, os, time
import torch
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipes = {"bf16": LatentDiffusionPipeline.from_pretrained("/tmp/distilled/pipeline", device="cuda"),
         "fp32": LatentDiffusionPipeline.from_pretrained("default", device="cuda")}
runs = [("bf16", "distilled", s) for s in sorted(pipes["bf16"].students)]
if not os.environ.get("STUDENTS_ONLY"): runs += [("bf16", "dpmpp2m", 10), ("bf16", "dpmpp2m", 25), ("fp32", "dpmpp2m", 25)]
samples, timing, path = {"ld4lg": {}}, {}, os.environ["OUT"] + "/samples_distilled.json"
for weights, sampler, steps in runs:
    for w in ((2.0,) if weights == "fp32" else (1.0, 2.0)):
        for s in (0, 1):
            pipe, key = pipes[weights], f"sampler={sampler},steps={steps},w={w},seed={s},weights={weights}"
            torch.cuda.synchronize(); t = time.perf_counter()
            samples["ld4lg"][key] = {n: pipe.sample(200, label=n, guidance_scale=w, sampler=sampler, steps=steps,
                                                    seed=s).texts for n in pipe.label_names}
            torch.cuda.synchronize(); timing[key] = round(time.perf_counter() - t, 2)
            samples["timing"] = timing
            json.dump(samples, open(path + ".tmp", "w")); os.replace(path + ".tmp", path)  # what is done survives a kill
            print(key, timing[key], samples["ld4lg"][key]["animal"][:2], flush=True)
PY
if [ -n "${KEEP_PIPELINE:-}" ]; then (cd /tmp/distilled && tar -cf - pipeline) | split -b 15m - $out/pipeline.tar.part-; fi
ls -la $out; grep -vE "^train:" $out/distill.log | tail -40
