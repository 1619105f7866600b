#!/usr/bin/env bash
# Consumer checks (issue 13), run by .ci/run: packs RnnSimd, RnnSimd.Training and the RnnSimd.Cli tool into a local
# feed, then, outside the repository (so none of its props, packages or project references apply):
#  (a) a console app made by `dotnet new console` references RnnSimd by version and runs tests/consumer/Program.cs
#      (steps and a sequence; exits non-zero if a hot call allocates);
#  (b) the same app published with Native AOT and <IlcInstructionSet>native</IlcInstructionSet> must print the same
#      output bitwise, kernel set included; a default AOT build (baseline instruction set) must say why it runs a
#      narrower set than the CPU offers, when the CPU offers more than the baseline;
#  (c) the tool installs into a temporary tool path, and `rnnsimd info` and `rnnsimd demo --quick` run.
# Needs clang and zlib1g-dev for Native AOT (.ci/run installs them).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props")"
work="$(mktemp -d /tmp/rnnsimd-consumer.XXXXXX)"
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
step() { echo; echo "== consumer: $*"; }

step "pack $version into a local feed"
for p in src/RnnSimd src/RnnSimd.Training src/RnnSimd.Cli; do
  dotnet pack "$repo/$p" -c Release -o "$feed" -v quiet -nologo
done
ls "$feed"

step "(a) a new console app referencing RnnSimd $version (JIT)"
cd "$work"
cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
dotnet new console -o app --framework net10.0 >/dev/null
cp "$repo/tests/consumer/Program.cs" app/Program.cs
dotnet add app package RnnSimd --version "$version" >/dev/null
grep -q "Include=\"RnnSimd\" Version=\"$version\"" app/app.csproj || { echo "FAIL: app.csproj does not reference RnnSimd $version"; exit 1; }
dotnet run --project app -c Release > jit.txt
cat jit.txt | cut -c1-160

step "(b) Native AOT with IlcInstructionSet=native: the same output, bitwise, and the same kernel set"
dotnet publish app -c Release -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet=native -o aot-native -v quiet -nologo >/dev/null
./aot-native/app > aot.txt
if ! diff -q jit.txt aot.txt >/dev/null; then
  echo "FAIL: the Native AOT build's output differs from the JIT build's:"; diff jit.txt aot.txt | cut -c1-200; exit 1
fi
echo "identical: $(head -1 aot.txt)"

step "(b') Native AOT with defaults (baseline instruction set)"
dotnet publish app -c Release -r linux-x64 -p:PublishAot=true -o aot-default -v quiet -nologo >/dev/null
./aot-default/app > aot-default.txt
head -3 aot-default.txt | cut -c1-300
jit_set="$(sed -n 's/^kernels: //p' jit.txt)"
default_set="$(sed -n 's/^kernels: //p' aot-default.txt)"
if [ "$default_set" != "$jit_set" ]; then
  grep -q "^reason: .*Native AOT build was compiled for a baseline instruction set.*IlcInstructionSet" aot-default.txt \
    || { echo "FAIL: the baseline AOT build runs '$default_set' (JIT: '$jit_set') without saying why"; exit 1; }
  echo "the baseline AOT build runs '$default_set' instead of '$jit_set' and says why (as documented)"
fi

step "(c) the tool: install into a temporary tool path, run info and demo --quick"
dotnet tool install RnnSimd.Cli --version "$version" --tool-path "$work/tools" --add-source "$feed" >/dev/null
"$work/tools/rnnsimd" info | head -20
(cd "$work" && "$work/tools/rnnsimd" demo --quick --out "$work/demo-out" | tail -6)
test -s "$work/demo-out/summary.json" || { echo "FAIL: demo --quick wrote no summary.json"; exit 1; }

echo; echo "consumer checks passed"
