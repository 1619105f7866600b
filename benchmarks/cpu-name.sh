#!/usr/bin/env bash
# Prints this machine's CPU short name, the perf-results/ folder results are kept in: the model name lower-cased,
# without (R)/(TM)/"CPU"/"Processor"/"N-Core"/clock, non-alphanumerics as '-', then -f<family>m<model>.
# e.g. "AMD EPYC 9R14 96-Core Processor" (family 25, model 17) -> amd-epyc-9r14-f25m17. Used by run.sh and peers.sh.
set -euo pipefail
model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 '^cpu family' /proc/cpuinfo | awk -F: '{gsub(/ /,"",$2); print $2}')
cpumodel=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | awk -F: '{gsub(/ /,"",$2); print $2}')
cpu=$(echo "$model" | tr '[:upper:]' '[:lower:]' | sed -E 's/\((r|tm)\)//g; s/(cpu|processor|[0-9]+-core)//g; s/@.*//; s/[^a-z0-9]+/-/g; s/^-+|-+$//g')
echo "${cpu}-f${family}m${cpumodel}"
