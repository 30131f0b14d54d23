# Shared by the device job scripts (source it): the start and the end of a call.
# job_setup: install the carried wheels (.whl/: what the device image lacks, e.g. fastcore, nltk, rouge_score) into
# /tmp/site and set the environment of the job (offline, unbuffered output, no progress bars).
job_setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
}
# pack_results NAME: print the telling lines of each $OUT/*.log, then pack the logs and JSON files into
# $OUT/NAME.tgz (one file to bring back) and list $OUT.
pack_results() {
  for f in $OUT/*.log; do
    echo "== $f"; tr '\r' '\n' < $f | grep -E "^real|trained|saved|written|wrote|held-out|fine-tuned|encoded|Error|error:" |
      tail -6
  done
  tar -C $OUT -czf $OUT/$1.tgz $(cd $OUT && ls *.log *.json) && rm -f $OUT/*.log $OUT/*.json
  ls -la $OUT
}
