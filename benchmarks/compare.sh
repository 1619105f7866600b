#!/usr/bin/env bash
# Judges benchmark results of a change against a base, like dotnet/performance's ResultsComparer.
#   benchmarks/compare.sh BASE_DIR NEW_DIR [--threshold 5%] [--noise 2ns]
#   benchmarks/compare.sh --allocations-only NEW_DIR
# Reads every *-report-full.json under each directory (BenchmarkDotNet full JSON, as run.sh keeps them), matches
# benchmarks by full name and job, and prints markdown tables of the slower and the faster ones and a summary line.
# A benchmark is Slower/Faster only when a one-sided Mann-Whitney U test finds its times shifted by more than both
# the threshold (relative to the base median) and the noise floor (absolute).
# Exit 0: no regression; 1: something is slower, or a hot-path benchmark (or one that allocated nothing in base)
# allocates in NEW; 2: bad arguments or a missing/unreadable/malformed report.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
project="$root/benchmarks/RnnSimd.Compare"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Build quietly, then run the built assembly: the report goes to stdout alone, and the exit code is the comparer's.
if ! log=$(dotnet build "$project" -c Release --nologo -v q 2>&1); then
  echo "$log" >&2
  echo "compare: building $project failed" >&2
  exit 2
fi
exec dotnet run --no-build -c Release --project "$project" -- "$@"
