#!/usr/bin/env bash
# Turns one machine's kept results into a report: reads DIR/summary.json (benchmarks/peers.sh) and, if present,
# DIR/latency-s1.json (benchmarks/latency.sh); writes DIR/performance.md and DIR/performance.png, and rewrites the
# README's table between <!-- perf-table:begin --> and <!-- perf-table:end --> (links point into DIR).
#   benchmarks/report.sh [DIR, default perf-results/<cpu-short-name>]
# Nothing is measured here; combinations that were not measured show as "–".
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-perf-results/$(bash benchmarks/cpu-name.sh)}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet run -c Release --project benchmarks/RnnSimd.Report -- --report "$dir" --readme README.md
