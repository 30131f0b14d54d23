#!/usr/bin/env bash
# Device call for the training bench: bench/bench_training.py on one GPU, most important rows first,
# each part under its own time limit so that a slow part leaves the others' rows. Results under $OUT.
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/job_common.sh; job_setup
nvidia-smi --query-gpu=name,clocks.sm,memory.used --format=csv,noheader
bench="python3 bench/bench_training.py --device cuda"
timeout 250 $bench --archs shipped --batch-sizes 256 1024 --stage1 off --out $out/bench_shipped.txt > $out/shipped.log 2>&1
timeout 200 $bench --archs paper --batch-sizes 256 1024 --modes --stage1 off --out $out/bench_paper.txt > $out/paper.log 2>&1
timeout 150 $bench --archs --out $out/bench_stage1.txt > $out/stage1.log 2>&1
grep -hE "^(shipped|paper|course|LM|stage|device)|Error|error" $out/*.log | tail -40
