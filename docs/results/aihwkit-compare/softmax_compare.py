"""Test error and mean |W| over tile seeds, rapa against aihwkit, for the softmax regression.
Usage: softmax_compare.py softmax-rapa.jsonl softmax-aihwkit.jsonl"""
import json
import statistics as st
import sys


def load(path):
    runs = {}
    for line in open(path):
        r = json.loads(line)
        runs.setdefault(r["rule"], []).append(r)
    return runs


a, b = load(sys.argv[1]), load(sys.argv[2])
print("| rule | test error %, rapa | test error %, aihwkit | mean \\|W\\|, rapa | mean \\|W\\|, aihwkit |")
print("|---|---:|---:|---:|---:|")
for rule in a:
    cells = []
    for key, scale, fmt in (("test_error", 100, "{:.2f} ± {:.2f}"), ("mean_abs_w", 1, "{:.3f} ± {:.3f}")):
        for runs in (a, b):
            v = [scale * r[key] for r in runs[rule]]
            cells.append(fmt.format(st.mean(v), st.stdev(v)))
    print(f"| {rule} | " + " | ".join(cells) + " |")
