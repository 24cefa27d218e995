"""Pooled mean and standard deviation of the PCM weights per target level and read, rapa against
aihwkit (all chips and rows pooled). Usage: pcm_compare.py pcm-rapa.jsonl pcm-aihwkit.jsonl"""
import json
import math
import sys

ROWS, COLS, LEVELS = 100, 200, 20
READS = ["programmed", "1 hour", "1 day", "1 year"]


def pooled(path):
    runs = [json.loads(line)["reads"] for line in open(path)]
    out = []
    for r in range(len(READS)):
        row = []
        for l in range(LEVELS):
            ms = [run[r][l][0] for run in runs]
            vs = [run[r][l][1] for run in runs]
            n, big_n = ROWS, ROWS * len(runs)
            mean = sum(ms) / len(ms)
            ss = sum((n - 1) * v + n * (m - mean) ** 2 for m, v in zip(ms, vs))
            row.append((mean, math.sqrt(ss / (big_n - 1))))
        out.append(row)
    return out


a, b = pooled(sys.argv[1]), pooled(sys.argv[2])
print("| target | read | mean, rapa | mean, aihwkit | std, rapa | std, aihwkit |")
print("|---:|---|---:|---:|---:|---:|")
for l in (0, 5, 9, 10, 15, 19):
    for r, name in enumerate(READS):
        t = -1.0 + 2.0 * (l * COLS // LEVELS) / (COLS - 1)
        print(f"| {t:.3f} | {name} | {a[r][l][0]:.4f} | {b[r][l][0]:.4f} | {a[r][l][1]:.4f} | {b[r][l][1]:.4f} |")
