#!/usr/bin/python3
"""Two-tower training throughput against the catalogue's size (issue 21, point 0): samples/s at batch 256 on a
1.7K-item and a 100K-item catalogue of the built-in generator (`funnel generate`, the same users and towers),
with dense Adam on every table (sparse_optimizer=none) and with the sparse optimiser on tables of at least
--min-rows rows (the default config's choice, docs/training.md). One run of this script gives the whole table.

    bench/bench_sparse_optimizer.py [--items 1700 100000] [--users 3000] [--epochs 1] [--train-fraction 1.0]
                                    [--repeats 5] [--sparse momentum_tail_adam] [--min-rows 10000] [--threads 1]

samples/s is the report's training-loop throughput (evaluation excluded). The runs are interleaved: repeat r runs
every cell once before repeat r + 1 starts, so that a shared machine's load falls on every cell alike; each cell
reports the best and the median of its runs, and the table gives the 1-minute load average at each run's start.
--train-fraction trains on a seeded share of the training interactions: a fixed, shorter run (the same share of
each catalogue's interactions; the generator gives both about the same number).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[1700, 100000])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sparse", default="momentum_tail_adam", choices=["sparse_adam", "momentum_tail_adam", "rowwise_adagrad"])
    parser.add_argument("--min-rows", type=int, default=10000)
    args = parser.parse_args()
    optimizers = {"dense Adam": ["--set", "sparse_optimizer=none"],
                  f"{args.sparse}, tables >= {args.min_rows:,} rows": ["--set", f"sparse_optimizer={args.sparse}", "--set",
                                                                     f"sparse_optimizer_min_rows={args.min_rows}"]}
    out = os.path.join(ROOT, "build", "bench", "sparse-optimiser")
    os.makedirs(out, exist_ok=True)
    data = {}
    for items in args.items:
        data[items] = os.path.join(out, f"generated-{args.users}u-{items}i")
        if not os.path.exists(os.path.join(data[items], "dataset.json")):
            subprocess.run([FUNNEL, "generate", "--out", data[items], "--users", str(args.users), "--items", str(items)], check=True,
                           capture_output=True)
    speed = {(items, name): [] for items in args.items for name in optimizers}
    loads = []
    for repeat in range(args.repeats):
        for items in args.items:
            for name, sets in optimizers.items():
                load = os.getloadavg()[0]
                loads.append(load)
                report = os.path.join(out, "report.json")
                subprocess.run([FUNNEL, "train", "--data", os.path.join(data[items], "dataset.json"), "--epochs", str(args.epochs),
                                "--batch-size", "256", "--threads", str(args.threads), "--out", os.path.join(out, "model.funnel"),
                                "--report", report, "--set", f"train_fraction={args.train_fraction}"] + sets,
                               check=True, capture_output=True)
                r = json.load(open(report))
                speed[(items, name)].append(r["samples_per_second"])
                print(f"repeat {repeat + 1}/{args.repeats}: {items:,} items, {name}: {r['samples_per_second']:,.0f} samples/s "
                      f"(load {load:.1f}, {int(r.get('train_samples', 0)):,} samples)", file=sys.stderr, flush=True)
    print(f"\nbatch 256, {args.users} users, {args.epochs} epoch(s) on {args.train_fraction:g} of the training interactions, "
          f"{args.threads} thread(s), {args.repeats} interleaved runs a cell; 1-minute load average at the runs' starts "
          f"{min(loads):.1f} to {max(loads):.1f} (median {statistics.median(loads):.1f}), {os.cpu_count()} cores\n")
    print("| optimiser | " + " | ".join(f"{i:,} items: best / median" for i in args.items) + " | largest / smallest: best / median |")
    print("| --- | " + " | ".join("---:" for _ in args.items) + " | ---: |")
    for name in optimizers:
        best = [max(speed[(i, name)]) for i in args.items]
        median = [statistics.median(speed[(i, name)]) for i in args.items]
        print(f"| {name} | " + " | ".join(f"{b:,.0f} / {m:,.0f}" for b, m in zip(best, median)) +
              f" | {best[-1] / best[0]:.2f} / {median[-1] / median[0]:.2f} |")
    # Paired by repeat (the runs of one repeat ran back to back, under about the same load): the ratio's spread.
    for name in optimizers:
        ratios = [large / small for large, small in zip(speed[(args.items[-1], name)], speed[(args.items[0], name)])]
        print(f"\n{name}: largest / smallest paired by repeat: median {statistics.median(ratios):.2f}, "
              f"range {min(ratios):.2f} to {max(ratios):.2f}")
    print("\nevery run (samples/s):")
    for (items, name), runs in speed.items():
        print(f"  {items:,} items, {name}: " + ", ".join(f"{s:,.0f}" for s in runs))


if __name__ == "__main__":
    main()
