#!/usr/bin/env bash
# CI allocation gate: runs the hot-path benchmarks (InferenceBenchmarks S1-S4, ReducedInferenceBenchmarks: S1 and S2
# at bf16 and int8 weights, and TrainingBenchmarks T1/T2) with a very short job (RNNSIMD_BENCH_MODE=gate: 1 warm-up, 3 iterations, 1 launch) and
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
# A run fails when any hot-path benchmark allocates, failed or is missing. MemoryDiagnoser counts the allocations of
# every thread in the process (GC.GetTotalAllocatedBytes), so the runtime's own background work (the finalizer thread,
# the JIT) can add a few hundred bytes to one benchmark's single counted iteration: seen in CI once as 336 B/op on T2
# lstm (one ~100 ms operation per iteration), never in three local runs of the same case. A hot path that allocates
# does so on every operation of every run, so a run that fails only by allocation is repeated, up to 3 runs in all:
# the gate passes when a whole run is clean, or when no benchmark allocated in every run so far (from the second run:
# a loaded host showed S3 gru, S4, T2 and S2 rows allocating 1-336 B/op in one run and not the next), and fails when
# one benchmark allocated in all 3 runs. Every run's table is printed.
attempt=1
while :; do
  run="$out/run$attempt"
  mkdir -p "$run"
  log="$run/benchmarks.log"
  echo "alloc-gate: run $attempt: the hot-path benchmarks (log: $log)"
  start=$SECONDS
  # Two filters, OR-ed by BenchmarkDotNet ('*InferenceBenchmarks*' also takes ReducedInferenceBenchmarks).
  if ! dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- \
      --filter '*InferenceBenchmarks*' '*TrainingBenchmarks*' --artifacts "$run" > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "alloc-gate: the benchmark run failed"
    exit 1
  fi
  echo "alloc-gate: benchmarks took $((SECONDS - start)) s"
  status=0
  bash benchmarks/compare.sh --allocations-only "$run" | tee "$run/gate.md" || status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] && exit 0
  if [ "$status" -ne 1 ] || ! grep -q ' 0 without a result' "$run/gate.md"; then
    # why a case has no result (an exception in its setup, a build error) is in BenchmarkDotNet's output
    grep -E 'Exception|error [A-Z]+[0-9]+|ExitCode != 0' "$log" | head -n 40 || true
    exit "$status"
  fi
  # the benchmarks that allocated in every run so far
  grep 'ALLOCATES' "$run/gate.md" | cut -d'|' -f2 | sed 's/^ *//; s/ *$//' | sort -u > "$run/allocating.txt"
  if [ "$attempt" -eq 1 ]; then cp "$run/allocating.txt" "$out/every-run.txt"
  else comm -12 "$out/every-run.txt" "$run/allocating.txt" > "$out/every-run.tmp" && mv "$out/every-run.tmp" "$out/every-run.txt"
  fi
  if [ "$attempt" -ge 2 ] && [ ! -s "$out/every-run.txt" ]; then
    echo "alloc-gate: no benchmark allocated in every one of $attempt runs: the runtime's background work, not a hot path -> pass"
    exit 0
  fi
  if [ "$attempt" -ge 3 ]; then
    echo "alloc-gate: allocated in each of $attempt runs:"; sed 's/^/  /' "$out/every-run.txt"
    exit 1
  fi
  attempt=$((attempt + 1))
  echo "alloc-gate: only allocations failed; running again to tell a hot path that allocates from the runtime's background work"
done
