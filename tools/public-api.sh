#!/usr/bin/env bash
# Records public API changes of the packaged libraries (RnnSimd, RnnSimd.Training) for
# Microsoft.CodeAnalysis.PublicApiAnalyzers: builds each, collects the symbols the analyzer reports as undeclared
# (RS0016) and appends them to that project's PublicAPI.Unshipped.txt, sorted. A removed or changed symbol (RS0017) is
# listed for you to delete by hand: deleting is the deliberate act of breaking the API. At a release, move the
# Unshipped lines into PublicAPI.Shipped.txt.
# Usage: bash tools/public-api.sh            (then review `git diff '*PublicAPI*'`)
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/RnnSimd src/RnnSimd.Training; do
  unshipped="$project/PublicAPI.Unshipped.txt"
  log="$(dotnet build "$project" -c Release --no-incremental -p:TreatWarningsAsErrors=false 2>&1 || true)"
  added="$(grep -F "$project/" <<<"$log" | grep -oP "RS0016: Symbol '\K.*(?=' is not part of the declared public API)" | sort -u || true)"
  removed="$(grep -F "$project/" <<<"$log" | grep -oP "RS0017: Symbol '\K.*(?=' is part of the declared API)" | sort -u || true)"
  if [ -n "$added" ]; then
    { grep -v '^#nullable enable$' "$unshipped" || true; echo "$added"; } | sort -u > "$unshipped.new"
    { echo '#nullable enable'; cat "$unshipped.new"; } > "$unshipped"; rm "$unshipped.new"
    echo "$project: $(wc -l <<<"$added") symbol(s) added to $unshipped"
  fi
  [ -n "$removed" ] && { echo "$project: declared but gone (delete these lines deliberately):"; echo "$removed"; }
done
true
