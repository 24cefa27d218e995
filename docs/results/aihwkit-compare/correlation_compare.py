"""Mean ± standard deviation over seeds of the diagonal weight and the off-diagonal spread,
rapa against aihwkit, for the correlation-detection example. Usage: compare.py A.jsonl B.jsonl"""
import json, sys, statistics as st
def load(p):
    runs = {}
    for l in open(p):
        r = json.loads(l)
        runs.setdefault(r["algo"], []).append(r["trace"])
    return runs
a, b = load(sys.argv[1]), load(sys.argv[2])
print("| rule | updates | diagonal, rapa | diagonal, aihwkit | off-diagonal std, rapa | off-diagonal std, aihwkit |")
print("|---|---:|---:|---:|---:|---:|")
for algo in a:
    for k in (1, 5, 9):
        cell = []
        for col in (1, 3):
            for runs in (a, b):
                v = [t[k][col] for t in runs[algo]]
                cell.append(f"{st.mean(v):.3f} ± {st.stdev(v):.3f}")
        print(f"| {algo} | {a[algo][0][k][0]} | " + " | ".join(cell) + " |")
