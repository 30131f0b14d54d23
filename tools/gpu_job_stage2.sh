#!/usr/bin/env bash
# The second device call that made the shipped model: stage2 + baseline + sweep in parallel on one H100,
# then samples from both models for evaluation on a CPU. Expects stage1's output in .runs/ (carried).
set -uo pipefail
out=${OUT:-/tmp/out}; runs=/tmp/runs
mkdir -p $runs && cp -r .runs/lm .runs/ae $runs/
bash tools/train_default.sh $runs baseline > $out/baseline.log 2>&1 &
bash tools/train_default.sh $runs sweep > $out/sweep.log 2>&1 &
(time bash tools/train_default.sh $runs stage2) > $out/stage2.log 2>&1
wait
python3 - <<'PY' > $out/samples.log 2>&1
import json, time, torch
from ld4lg_edu.pipeline import LatentDiffusionPipeline
from ld4lg_edu.baseline import ARBaseline
pipe = LatentDiffusionPipeline.from_pretrained("/tmp/runs/pipeline", device="cuda")
samples = {"ld4lg": {}, "ar": {}}
for w in (1.0, 2.0, 3.0):
    for seed in (0, 1):
        t = time.time()
        res = {name: pipe.sample(200, label=name, guidance_scale=w, steps=25, seed=seed).texts for name in pipe.label_names}
        samples["ld4lg"][f"w={w},seed={seed}"] = res
        print("ld4lg", w, seed, round(time.time() - t, 1), "s", res["animal"][:3], flush=True)
ar = ARBaseline.from_pretrained("/tmp/runs/ar")
for seed in (0, 1):
    samples["ar"][f"seed={seed}"] = {name: ar.sample(200, label=name, seed=seed) for name in pipe.label_names}
    print("ar", seed, samples["ar"][f"seed={seed}"]["animal"][:3], flush=True)
json.dump(samples, open("/tmp/runs/samples.json", "w"))
PY
cp $runs/samples.json $runs/ae_sweep.json $out/ 2>/dev/null
cd $runs && tar cf - pipeline | split -b 15m - $out/pipeline.tar.part-
grep -h -E "real|trained|saved|encoded|written|Error|error" $out/*.log | tail -30
ls -la $out
