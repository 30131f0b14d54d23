#!/usr/bin/env bash
# One device call for the frozen-encoder lever (tools/encoder_lever.py): the MiniLM row and the control row (the
# shipped autoencoder through the same short stage 2), side by side on one GPU; AE_STEPS=N trains the MiniLM row N
# steps (default 4000), LEVER_FLAGS passes more flags to it (e.g. "--resume --ae-dim 256 --save $OUT/ae"),
# TRAIN_S stops it after that many seconds (default 590; a later call with --resume goes on), MINILM_ONLY=1 skips the
# control. Results: $OUT/minilm.json, $OUT/shipped_short.json, their logs.
# Carry .whl and .minilm (tools/prune_minilm.py, 37 MiB); to stay under the 64 MiB carry, move the denoiser shards,
# nbs/, docs/, tests/, bench/ and the unused tools/ (keep job_common.sh) aside for the call (the job reads none).
set -uo pipefail
out=${OUT:-/tmp/out}
source tools/job_common.sh; job_setup
lever="python3 tools/encoder_lever.py"
timeout "${TRAIN_S:-590}" $lever minilm --minilm .minilm/minilm --ae-steps "${AE_STEPS:-4000}" ${LEVER_FLAGS:-} \
  --out "$out/minilm.json" > "$out/minilm.log" 2>&1 &
[ -n "${MINILM_ONLY:-}" ] || $lever shipped --out "$out/shipped_short.json" > "$out/shipped_short.log" 2>&1 &
wait
for f in "$out"/minilm.log "$out"/shipped_short.log; do
  [ -f "$f" ] || continue
  echo "== $f"; tr '\r' '\n' < "$f" | grep -E "done|validity|reconstruction|Error|error" | cut -c1-300
done
ls -la "$out"
