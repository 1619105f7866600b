#!/usr/bin/env bash
# Measures this machine's ceilings (issue 12, item 5) and keeps them in perf-results/<cpu-short-name>/roofline.json
# and roofline.md beside the benchmark results: FMA peak GFLOP/s, and read bandwidth GB/s for working sets of
# 16 KiB, 256 KiB, 768 KiB, 8 MiB and 256 MiB per thread, at every vector width (Vector512, Vector256, scalar) on
# 1 and 2 threads, plus the cache sizes; so reports can give "% of peak" and "% of bandwidth".
#   benchmarks/roofline.sh
# Takes about 10 s after the build. Run it on an otherwise idle machine: the files say how busy the others were.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=$(bash benchmarks/cpu-name.sh)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- --roofline --out "perf-results/$cpu"
