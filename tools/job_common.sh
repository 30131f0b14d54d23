# Shared by the device job scripts (source it): the end of a call.
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
