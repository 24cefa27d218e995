#!/bin/bash
# Copy the Table 2 full-budget run directories into git (docs/results/runs/...).
cd "$(dirname "$0")/../../../.."  # the repository root
SRC=runs/table2-cifar10-80ep-full
DST=docs/results/runs/table2-cifar10-80ep-full
for d in $SRC/*/; do
  r=$(basename $d)
  case $r in .claim-*) continue;; esac
  mkdir -p $DST/$r
  for f in config.toml plan.toml metrics.jsonl vote.json reduce.json checkpoint.bin; do
    [ -f $d/$f ] && cp $d/$f $DST/$r/
  done
done
for r in mp-analog mp-float; do
  d=runs/cifar10-80ep-$r
  [ -d $d ] || continue
  mkdir -p docs/results/runs/cifar10-80ep-$r
  for f in config.toml metrics.jsonl checkpoint.bin; do [ -f $d/$f ] && cp $d/$f docs/results/runs/cifar10-80ep-$r/; done
done
