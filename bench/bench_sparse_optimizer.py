#!/usr/bin/python3
"""Two-tower training throughput against the catalogue's size (issue 21, point 0): samples/s at batch 256 on a
1.7K-item and a 100K-item catalogue of the built-in generator (`funnel generate`, the same users and towers),
with dense Adam on every table (sparse_optimizer=none) and with the sparse optimiser on tables of at least
--min-rows rows (the default config's choice, docs/training.md). One run of this script gives the whole table.

    bench/bench_sparse_optimizer.py [--items 1700 100000] [--users 3000] [--epochs 2] [--repeats 1]
                                    [--sparse momentum_tail_adam] [--min-rows 10000] [--threads 0]

samples/s is the report's training-loop throughput over all epochs (evaluation excluded); with
--repeats N each cell is the best of N runs, to damp a shared machine's noise.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[1700, 100000])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--sparse", default="momentum_tail_adam", choices=["sparse_adam", "momentum_tail_adam", "rowwise_adagrad"])
    parser.add_argument("--min-rows", type=int, default=10000)
    args = parser.parse_args()
    optimizers = {"dense Adam": ["--set", "sparse_optimizer=none"],
                  f"{args.sparse}, tables >= {args.min_rows:,} rows": ["--set", f"sparse_optimizer={args.sparse}", "--set",
                                                                     f"sparse_optimizer_min_rows={args.min_rows}"]}
    out = os.path.join(ROOT, "build", "bench", "sparse-optimiser")
    os.makedirs(out, exist_ok=True)
    speed = {}
    for items in args.items:
        data = os.path.join(out, f"generated-{args.users}u-{items}i")
        if not os.path.exists(os.path.join(data, "dataset.json")):
            subprocess.run([FUNNEL, "generate", "--out", data, "--users", str(args.users), "--items", str(items)], check=True,
                           capture_output=True)
        for name, sets in optimizers.items():
            best = 0.0
            for _ in range(args.repeats):
                report = os.path.join(out, "report.json")
                print(f"{items} items, {name} ...", file=sys.stderr, flush=True)
                subprocess.run([FUNNEL, "train", "--data", os.path.join(data, "dataset.json"), "--epochs", str(args.epochs), "--batch-size",
                                "256", "--threads", str(args.threads), "--out", os.path.join(out, "model.funnel"), "--report", report] + sets,
                               check=True, capture_output=True)
                r = json.load(open(report))
                best = max(best, r["samples_per_second"])
            speed[(items, name)] = best
    print(f"\nbatch 256, {args.users} users, {args.epochs} epochs, best of {args.repeats}\n")
    print("| optimiser | " + " | ".join(f"{i:,} items" for i in args.items) + " | largest / smallest |")
    print("| --- | " + " | ".join("---:" for _ in args.items) + " | ---: |")
    for name in optimizers:
        cells = [speed[(i, name)] for i in args.items]
        print(f"| {name} | " + " | ".join(f"{c:,.0f}" for c in cells) + f" | {cells[-1] / cells[0]:.2f} |")


if __name__ == "__main__":
    main()
