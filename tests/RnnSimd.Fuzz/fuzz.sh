#!/usr/bin/env bash
# Coverage-guided fuzzing of every file reader (safetensors, StateDict, checkpoint metadata, Trainer.Resume; or the
# ONNX importer) with SharpFuzz + AFL++:  tests/RnnSimd.Fuzz/fuzz.sh [minutes, default 10] [safetensors (default) | onnx]
# Installs AFL++ (Debian's afl++) if missing and the SharpFuzz instrumenter (.config/dotnet-tools.json), builds the
# harness, instruments RnnSimd.dll, and runs afl-fuzz from the committed seeds in tests/RnnSimd.Fuzz/corpus
# (onnx: corpus-onnx, with the dictionary onnx.dict).
# Findings go to tests/RnnSimd.Fuzz/bin/fuzz/findings (onnx: findings-onnx) (crashes/, hangs/); replay one with
#   dotnet run -c Release --project tests/RnnSimd.Fuzz -- [--onnx] --replay FILE  (a plain build: the instrumented
#   dll faults outside AFL++)
# Not part of CI (it runs for minutes); the deterministic CheckpointFuzzTests and HostileOnnxMutationTests are.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes="${1:-10}"
target="${2:-safetensors}"
case "$minutes" in ''|*[!0-9]*) echo "usage: $0 [minutes] [safetensors|onnx]" >&2; exit 2 ;; esac
case "$target" in
  safetensors) corpus=tests/RnnSimd.Fuzz/corpus; findings=findings; log=afl.log; harness=(); dict=() ;;
  onnx) corpus=tests/RnnSimd.Fuzz/corpus-onnx; findings=findings-onnx; log=afl-onnx.log; harness=(--onnx); dict=(-x tests/RnnSimd.Fuzz/onnx.dict) ;;
  *) echo "usage: $0 [minutes] [safetensors|onnx]" >&2; exit 2 ;;
esac
if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet tool restore >/dev/null
out=tests/RnnSimd.Fuzz/bin/fuzz
rm -rf "${out:?}/$findings"
dotnet build -c Release tests/RnnSimd.Fuzz -o "$out/bin" -v quiet -nologo
dotnet tool run sharpfuzz "$out/bin/RnnSimd.dll"
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
afl-fuzz -i "$corpus" -o "$out/$findings" "${dict[@]}" -t 10000 -m none -V $((minutes * 60)) -- dotnet "$out/bin/RnnSimd.Fuzz.dll" "${harness[@]}" > "$out/$log" 2>&1 || true
stats="$out/$findings/default/fuzzer_stats"
if [ ! -f "$stats" ]; then tail -n 40 "$out/$log"; echo "fuzz: afl-fuzz did not start" >&2; exit 1; fi
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg)' "$stats"
crashes=$(ls "$out/$findings/default/crashes" 2>/dev/null | grep -vc README || true)
echo "fuzz: $crashes crash input(s) in $out/$findings/default/crashes"
[ "$crashes" -eq 0 ]
