#!/usr/bin/env bash
# Second device call for the benches: stage-1 training rows, then 1000 texts end to end vs the AR baseline.
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/job_common.sh; job_setup
timeout 230 python3 bench/bench_training.py --device cuda --archs --out $out/bench_stage1.txt > $out/stage1.log 2>&1
timeout 150 python3 bench/bench_pipeline.py --device cuda --texts 1000 > $out/pipeline.log 2>&1
grep -hE "^(course|LM|stage|LD4LG|AR|model|[0-9]+ texts)|Error" $out/*.log | tail -30
