#!/usr/bin/env bash
# One device call after a new default model lands: the CUDA-only tests, the evaluation samples of the shipped model
# (w = 1, 2, 3; seeds 0, 1; 200 per class), then the training bench rows with the whole-step CUDA graph and the
# 1000-texts pipeline bench. Each part has its own time limit so a slow part leaves the others' results under $OUT.
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/job_common.sh; job_setup
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_fast_training.py > $out/gpu_tests.log 2>&1
timeout 90 python3 - > $out/samples.log 2>&1 <<'PY'
import json, os, time
from ld4lg_edu.pipeline import LatentDiffusionPipeline
pipe = LatentDiffusionPipeline.from_pretrained("default", device="cuda")
samples = {"ld4lg": {}, "timing": {}}
for w in (1.0, 2.0, 3.0):
    for seed in (0, 1):
        t = time.time()
        samples["ld4lg"][f"w={w},seed={seed}"] = {name: pipe.sample(200, label=name, guidance_scale=w, steps=25, seed=seed).texts
                                                 for name in pipe.label_names}
        samples["timing"][f"ld4lg,w={w},seed={seed}"] = round(time.time() - t, 2)
        print(w, seed, samples["ld4lg"][f"w={w},seed={seed}"]["animal"][:3], flush=True)
json.dump(samples, open(os.environ["OUT"] + "/samples_ld4lg.json", "w"))
PY
bench="python3 bench/bench_training.py --device cuda --compile on --stage1 off"
timeout 200 $bench --archs shipped --batch-sizes 256 --modes reduce-overhead step-graph --out $out/bench_shipped.txt > $out/shipped.log 2>&1
timeout 160 $bench --archs paper --batch-sizes 256 --modes step-graph --out $out/bench_paper.txt > $out/paper.log 2>&1
timeout 110 python3 bench/bench_pipeline.py --device cuda --texts 1000 > $out/pipeline.log 2>&1
tail -3 $out/gpu_tests.log
grep -hE "^(shipped|paper|LD4LG|AR|model|[0-9]+ texts)|final loss|Error" $out/*.log | tail -30
