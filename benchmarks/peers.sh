#!/usr/bin/env bash
# Runs the peer benchmarks (RnnSimd beside LibTorch via TorchSharp and ONNX Runtime; benchmarks/RnnSimd.Peers)
# and keeps the results in perf-results/<cpu-short-name>/peers/.
#   benchmarks/peers.sh [quick|full] [BenchmarkDotNet filter ..., default '*'; several are OR-ed]
# quick: 3 warm-up + 8 measured iterations, 1 launch per case; full: BenchmarkDotNet's adaptive defaults.
# A filter may name parameters too, e.g. '*StreamStep*' (S1 only, every precision) or '*SeqInfer*lstm*' or '*S1*Threads: 1*'.
# First checks that every peer computes RnnSimd's function (--verify; stops if one does not), then runs the
# benchmarks (each case checks itself again in its [GlobalSetup]), then writes GitHub markdown (*-report-github.md),
# full JSON (*-report-full.json), verify.txt and versions.txt (TorchSharp, LibTorch, ONNX Runtime, machine) there,
# and perf-results/<cpu>/summary.json over the main project's and the peers' full-JSON reports. Before the benchmarks,
# benchmarks/roofline.sh measures the machine's FMA peak and read bandwidth into perf-results/<cpu>/roofline.{json,md}.
# Restores LibTorch and ONNX Runtime (about 1.3 GB of native libraries in the build output) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
filters=("${@:2}")
[ ${#filters[@]} -gt 0 ] || filters=('*')
case "$mode" in quick|full) ;; *) echo "usage: $0 [quick|full] [filter ...]" >&2; exit 2 ;; esac

cpu=$(bash benchmarks/cpu-name.sh)
out="perf-results/$cpu/peers"
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT
export RNNSIMD_BENCH_MODE="$mode" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
project=benchmarks/RnnSimd.Peers
peers() { dotnet run -c Release --no-build --project "$project" -- "$@"; }

dotnet build -c Release "$project" -v quiet -nologo
bash benchmarks/roofline.sh
if ! peers --verify > "$artifacts/verify.txt"; then
  cat "$artifacts/verify.txt"
  echo "a peer does not compute RnnSimd's function (see above); nothing benchmarked" >&2
  exit 1
fi
peers --filter "${filters[@]}" --artifacts "$artifacts"

mkdir -p "$out"
cp "$artifacts"/results/*-report-github.md "$artifacts"/results/*-report-full.json "$artifacts/verify.txt" "$out"/
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $mode"
  echo "filter: ${filters[*]}"
  echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) logical cores"
  echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -oE 'avx512f|avx2|fma' | sort -u | tr '\n' ' ')"
  echo "kernel: $(uname -sr)"
  echo "load average (1, 5, 15 min) after the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  echo "dotnet sdk: $(dotnet --version)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  peers --versions
} > "$out/versions.txt"
if grep -q '| *NA *|' "$artifacts"/results/*-report-github.md; then
  echo "warning: some cases have no result (NA): a [GlobalSetup] check or a run failed; see the log above" >&2
fi
peers --summarize "perf-results/$cpu"
echo "results in $out"
