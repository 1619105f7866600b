#!/usr/bin/env bash
# Measures the S1 stream-step latency distribution (p50, p99, p99.9, max, mean, GCs, allocated bytes; one timed sample
# per RecurrentNetwork.Step, batch 1, input 64, hidden 256, state carried) for lstm, gru and rnn_tanh, and keeps it
# in perf-results/<cpu-short-name>/latency-s1.json and latency-s1.md.
#   benchmarks/latency.sh [steps per cell, default 1000000]
# Takes about a minute at the default on a recent x86 core. Run it on an otherwise idle machine: the tail
# percentiles are what other processes disturb first.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-1000000}"
case "$steps" in ''|*[!0-9]*) echo "usage: $0 [steps per cell]" >&2; exit 2 ;; esac
cpu=$(bash benchmarks/cpu-name.sh)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- --latency --steps "$steps" --out "perf-results/$cpu"
