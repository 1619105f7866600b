#!/usr/bin/env bash
# CI allocation gate: runs the hot-path benchmarks (InferenceBenchmarks S1-S3 and, once that class exists,
# TrainingBenchmarks T1/T2) with a very short job (RNNSIMD_BENCH_MODE=gate: 1 warm-up, 3 iterations, 1 launch) and
# MemoryDiagnoser, then fails unless every one of them ran and allocated 0 bytes per operation. Times are not judged
# here: on a shared CI machine they are noise (compare.sh BASE NEW is for that, on a quiet machine).
#   benchmarks/alloc-gate.sh [RESULTS_DIR]   keeps the results there (default: a temporary directory, removed)
# Exit 0: all clean; 1: a hot-path benchmark allocates, failed or is missing; 2: the reports could not be read.
set -euo pipefail
cd "$(dirname "$0")/.."
export RNNSIMD_BENCH_MODE=gate DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if [ $# -ge 1 ]; then
  out="$1"
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
log="$out/benchmarks.log"
echo "alloc-gate: running the hot-path benchmarks (log: $log)"
start=$SECONDS
# Two filters, OR-ed by BenchmarkDotNet: one that matches no class (TrainingBenchmarks, before it exists) is no error.
if ! dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- \
    --filter '*InferenceBenchmarks*' '*TrainingBenchmarks*' --artifacts "$out" > "$log" 2>&1; then
  tail -n 60 "$log"
  echo "alloc-gate: the benchmark run failed"
  exit 1
fi
echo "alloc-gate: benchmarks took $((SECONDS - start)) s"
status=0
bash benchmarks/compare.sh --allocations-only "$out" || status=$?
if [ "$status" -ne 0 ]; then
  # why a case has no result (an exception in its setup, a build error) is in BenchmarkDotNet's output
  grep -E 'Exception|error [A-Z]+[0-9]+|ExitCode != 0' "$log" | head -n 40 || true
fi
exit "$status"
