#!/usr/bin/python3
"""Funnel against the PyTorch reference (../shared/peers/two_tower.py) on MovieLens 100K: the same
protocol (split, features, towers, loss, optimiser, 20 epochs, epoch chosen on validation Recall@50),
run one after the other on this machine, nothing else running. Prints a table and writes JSON lines.

    bench/compare_two_tower.py [--batches 64 256 1024] [--seeds 0] [--out build/bench/two_tower.jsonl]

Needs Debian's python3-torch (for the reference) and build/release/train/funnel. Throughput is training
samples per second of the training loop alone, as the reference measures it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "..", "shared", "peers")
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def run_reference(batch, seed, extra):
    env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS)
    out = subprocess.run(["/usr/bin/python3", "two_tower.py", "--batch", str(batch), "--seed", str(seed)] + extra,
                         cwd=PEERS, env=env, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"recall@10": r["test"]["recall@10"], "recall@50": r["test"]["recall@50"], "ndcg@10": r["test"]["ndcg@10"],
            "best_epoch": r["best_epoch"], "samples_per_second": r["samples_per_sec"]}


def run_funnel(batch, seed, extra):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        subprocess.run([FUNNEL, "train", "--data", os.path.join(ROOT, "datasets", "ml-100k.json"), "--batch-size", str(batch),
                        "--seed", str(seed), "--out", os.path.join(tmp, "m.funnel"), "--report", report] + extra,
                       check=True, capture_output=True, text=True)
        r = json.load(open(report))
    return {"recall@10": r["test"]["recall@10"], "recall@50": r["test"]["recall@50"], "ndcg@10": r["test"]["ndcg@10"],
            "best_epoch": r["best_epoch"], "samples_per_second": r["samples_per_second"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[256])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "two_tower.jsonl"))
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(PEERS, "..", "data", "ml-100k")):
        sys.exit("../shared/data/ml-100k is absent: nothing to compare on")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    rows = []
    with open(args.out, "w") as log:
        for batch in args.batches:
            for seed in args.seeds:
                for system, run in (("reference", run_reference), ("funnel", run_funnel)):
                    print(f"running {system}, batch {batch}, seed {seed} ...", file=sys.stderr, flush=True)
                    row = dict(system=system, batch=batch, seed=seed, **run(batch, seed, []))
                    log.write(json.dumps(row) + "\n")
                    rows.append(row)
    print("| system | batch | seed | best epoch | test R@10 | test R@50 | test NDCG@10 | samples/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['system']} | {r['batch']} | {r['seed']} | {r['best_epoch']} | {r['recall@10']:.4f} | {r['recall@50']:.4f} | "
              f"{r['ndcg@10']:.4f} | {r['samples_per_second']:,.0f} |")
    for batch in args.batches:
        ref = [r["samples_per_second"] for r in rows if r["system"] == "reference" and r["batch"] == batch]
        fun = [r["samples_per_second"] for r in rows if r["system"] == "funnel" and r["batch"] == batch]
        print(f"\nbatch {batch}: Funnel / reference training throughput = {sum(fun) / sum(ref):.2f}x")


if __name__ == "__main__":
    main()
