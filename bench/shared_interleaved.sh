#!/usr/bin/env bash
# Drives the shared harness (../shared/bench/run.sh, which users of the
# package do not have) one scenario at a time, so that the servers compared in
# a run are measured seconds apart, not minutes: run.sh itself takes each
# server through all its scenarios before the next server, and this machine's
# drift over those minutes is as large as the differences measured
# (docs/benchmarks.md, "Why deno task bench and run.sh differ"). The servers
# also take turns in reverse order every other run, as `deno task bench` does.
#
# usage: bench/shared_interleaved.sh RUN_SH [name=command ...]
#   RUN_SH   the shared harness's run.sh
#   entries  the servers to compare with raw Deno (run.sh's own
#            servers/raw_deno.ts, always measured, first in odd runs and last
#            in even ones), as run.sh takes them ({port} is substituted)
# env: RUNS (default 7), SCENARIOS (default "pp1 pp100 pp1000 bulk idle"),
#      OUT (default $TMPDIR/echo-bench/interleaved-<stamp>), and run.sh's own
#      knobs (DUR, WARM, ...), passed through.
#
# Writes $OUT/results.txt with run.sh's lines, numbered by run; tabulate it
# with `deno task bench --table $OUT/results.txt`.
set -eu
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 PATH/TO/shared/bench/run.sh ['name=command with {port}' ...]" >&2
  exit 2
fi
RUN_SH=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
RUNS=${RUNS:-7}
SCENARIOS=${SCENARIOS:-"pp1 pp100 pp1000 bulk idle"}
OUT=${OUT:-${TMPDIR:-/tmp}/echo-bench/interleaved-$(date +%Y%m%d-%H%M%S)}
entries=("raw_deno=deno run -A $(dirname "$RUN_SH")/servers/raw_deno.ts {port}" "$@")
mkdir -p "$OUT"
# The header tells `deno task bench --table` how these runs were ordered.
echo "# shared_interleaved RUNS=$RUNS DUR=${DUR:-5} SCENARIOS=$SCENARIOS" >"$OUT/results.txt"
for run in $(seq 1 "$RUNS"); do
  order=("${entries[@]}")
  if [ $((run % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#entries[@]} - 1; i >= 0; i--)); do order+=("${entries[$i]}"); done
  fi
  for sc in $SCENARIOS; do
    dir="$OUT/run$run.$sc"
    echo "run $run/$RUNS $sc: ${order[*]%%=*}"
    ANCHORS=0 RUNS=1 SCENARIOS="$sc" OUT="$dir" bash "$RUN_SH" "${order[@]}" \
      >"$dir.log" 2>&1 || { echo "run.sh failed: see $dir.log" >&2; exit 1; }
    sed "s/^run=1 /run=$run /" "$dir/results.txt" >>"$OUT/results.txt"
  done
done
echo "results: $OUT/results.txt"
