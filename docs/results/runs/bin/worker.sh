#!/bin/bash
# Table 2 full-budget worker (see docs/reproduction.md). Usage: worker.sh ID
cd "$(dirname "$0")/../../../.."  # the repository root
OUT=runs/table2-cifar10-80ep-full
for row in mixed-random mixed-none stochastic-random stochastic-none max-none max-random \
           avg-enlarged mixed-enlarged stochastic-enlarged max-enlarged mp-analog mp-float; do
  mkdir $OUT/.claim-$row 2>/dev/null || continue
  case $row in
    mp-analog)
      runs/bin/rapa-f03745c train --config examples/configs/analog-ablation/MP-default-omega-mixedprec.toml \
        --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg --lr 0.005 --epochs 80 --seed 1 \
        --threads 1 --out runs/cifar10-80ep-mp-analog --auto-resume >> $OUT/driver-$1.log 2>&1 ;;
    mp-float)
      runs/bin/rapa-f03745c train --config examples/configs/analog-ablation/A-float-he.toml \
        --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg --lr 0.005 --epochs 80 --seed 1 \
        --threads 1 --out runs/cifar10-80ep-mp-float --auto-resume >> $OUT/driver-$1.log 2>&1 ;;
    *)
      runs/bin/rapa-688fb04 experiment table2 --dataset cifar10 --data-dir ../shared/data/cifar10-jpeg \
        --epochs 80 --threads 1 --out $OUT --only $row >> $OUT/driver-$1.log 2>&1 ;;
  esac
done
