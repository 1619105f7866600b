#!/usr/bin/env bash
# Runs the RnnSimd benchmarks with fixed options and keeps the results in perf-results/<cpu-short-name>/.
#   benchmarks/run.sh [quick|full] [BenchmarkDotNet filter, default '*']
# quick: 3 warm-up + 8 measured iterations, 1 launch per benchmark (smoke and trend checks);
# full:  BenchmarkDotNet's adaptive defaults (what the committed figures use).
# Writes GitHub markdown (*-report-github.md), full JSON (*-report-full.json) and versions.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
filter="${2:-*}"
case "$mode" in quick|full) ;; *) echo "usage: $0 [quick|full] [filter]" >&2; exit 2 ;; esac

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 '^cpu family' /proc/cpuinfo | awk -F: '{gsub(/ /,"",$2); print $2}')
cpumodel=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | awk -F: '{gsub(/ /,"",$2); print $2}')
cpu=$(bash benchmarks/cpu-name.sh)
out="perf-results/$cpu"
artifacts=$(mktemp -d)
mkdir -p "$out"

export RNNSIMD_BENCH_MODE="$mode" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- --filter "$filter" --artifacts "$artifacts"

cp "$artifacts"/results/*-report-github.md "$artifacts"/results/*-report-full.json "$out"/
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $mode"
  echo "cpu: $model (family $family, model $cpumodel), $(nproc) logical cores"
  echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -oE 'avx512f|avx2|fma' | sort -u | tr '\n' ' ')"
  echo "kernel: $(uname -sr)"
  echo "dotnet sdk: $(dotnet --version)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
} > "$out/versions.txt"
rm -rf "$artifacts"
echo "results in $out"
