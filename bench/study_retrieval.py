#!/usr/bin/python3
"""The retrieval study (docs/studies/retrieval.md): in-batch softmax at batch 64, 256 and 1024 against
Cross-Batch Negative Sampling at batch 64 and 256 with memory banks of 512, 2048 and 8192, on the real
datasets in ../shared/data. Each run writes a report; the table is printed at the end.

    bench/study_retrieval.py --dataset ml-100k [--epochs 20] [--runs inbatch cbns] [--extra KEY=VALUE ...]

Peak memory is the maximum resident set size of the whole `funnel train` process (GNU time).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")
DATASETS = {"ml-100k": "ml-100k.json", "ml-1m": "ml-1m.json", "amazon-beauty": "amazon-beauty.json"}


def configurations(kinds):
    runs = []
    if "inbatch" in kinds:
        runs += [(f"in-batch B={b}", {"batch_size": b}) for b in (64, 256, 1024)]
    if "cbns" in kinds:
        # The rows named "CBNS" are the paper's form (the default is the balanced item gradient); the
        # balanced rows pass --extra cbns_balanced_item_gradient=true, which comes later and wins.
        runs += [(f"CBNS B={b} M={m}", {"batch_size": b, "negatives": "cbns", "memory_size": m, "cbns_balanced_item_gradient": "false"})
                 for b in (64, 256) for m in (512, 2048, 8192)]
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--runs", nargs="+", default=["inbatch", "cbns"], choices=["inbatch", "cbns"])
    parser.add_argument("--only", nargs="*", default=[], help="run only these names (e.g. 'CBNS B=64 M=2048')")
    parser.add_argument("--extra", nargs="*", default=[], help="config overrides for every run, KEY=VALUE")
    parser.add_argument("--tag", default="", help="appended to the run names and the report folder")
    args = parser.parse_args()
    out_dir = os.path.join(ROOT, "build", "study", args.dataset + (("-" + args.tag) if args.tag else ""))
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name, overrides in configurations(args.runs):
        if args.only and name not in args.only:
            continue
        slug = name.replace(" ", "_").replace("=", "")
        report = os.path.join(out_dir, slug + ".json")
        command = ["/usr/bin/time", "-f", "%M", FUNNEL, "train", "--data", os.path.join(ROOT, "datasets", DATASETS[args.dataset]),
                   "--epochs", str(args.epochs), "--out", os.path.join(out_dir, slug + ".funnel"), "--report", report,
                   "--metrics-log", os.path.join(out_dir, slug + ".jsonl")]
        for key, value in list(overrides.items()) + [e.split("=", 1) for e in args.extra]:
            command += ["--set", f"{key}={value}"]
        print(f"{args.dataset}: {name} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            sys.exit(f"run '{name}' failed")
        peak_kib = int(done.stderr.strip().splitlines()[-1])
        r = json.load(open(report))
        rows.append((name + (f" ({args.tag})" if args.tag else ""), r, peak_kib))
    print(f"\n{args.dataset}, {args.epochs} epochs{', ' + ' '.join(args.extra) if args.extra else ''}\n")
    print("| run | best epoch | R@10 | R@50 | NDCG@10 | tail R@50 | coverage@50 | samples/s | peak memory |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r, peak in rows:
        t = r["test"]
        print(f"| {name} | {r['best_epoch']} | {t['recall@10']:.4f} | {t['recall@50']:.4f} | {t['ndcg@10']:.4f} | "
              f"{t['tail_recall@50']:.4f} | {t['coverage@50']:.3f} | {r['samples_per_second']:,.0f} | {peak / 1024:.0f} MiB |")


if __name__ == "__main__":
    main()
