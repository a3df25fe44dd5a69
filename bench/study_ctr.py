#!/usr/bin/python3
"""The ranking study (docs/studies/ctr.md): the DNN baseline against CAN (orders 1 and 3, each of the three
independence levels switched) on the real CTR datasets in ../shared/data, several seeds, mean +- sample standard
deviation of test AUC, GAUC and LogLoss at the epoch chosen on validation AUC; and the losses (BCE,
focal, GHM-C) at 1:10 negatives.

    bench/study_ctr.py --dataset amazon-beauty --study models [--seeds 0 1 2] [--variants dnn can-o3 ...]
    bench/study_ctr.py --dataset amazon-beauty --study losses [--seeds 0 1 2]

Every run writes a report under build/study/ctr-<dataset>/; a run whose report exists is not run again
(delete the folder to start over). The table is printed at the end. Runs use the binary given by
--funnel (default build/release/train/funnel).
"""
import argparse
import json
import os
import statistics
import sys

from study_common import mean_sd, run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = {"amazon-beauty": "amazon-beauty-ctr.json", "amazon-grocery": "amazon-grocery.json", "ml-1m": "ml-1m-ctr.json"}

# The four pairs of two induction features (the candidate's item id and category) with two feeds (the
# behaviours' item ids and categories): the setting in which combination independence means something.
FOUR = {"ml-1m": "item_id:item_id,item_id:genre,genre:item_id,genre:genre"}
FOUR_DEFAULT = "item_id:item_id,item_id:category,category:item_id,category:category"

VARIANTS = {
    "dnn": ("DNN", {"model": "dnn"}),
    "can-o1": ("CAN, 1 order", {"coaction_orders": 1}),
    "can-o3": ("CAN, 3 orders", {}),
    "can-o3-shared": ("CAN, 3 orders, no parameter independence", {"parameter_independence": "false"}),
    "can-o3-order": ("CAN, 3 orders, order independence", {"order_independence": "true"}),
    "can-o3-four": ("CAN, 3 orders, 4 pairs, shared induction", {"coaction": "four"}),
    "can-o3-four-comb": ("CAN, 3 orders, 4 pairs, combination independence (both sides)", {"coaction": "four", "combination_independence": "true"}),
}
LOSSES = {"bce": ("DNN, BCE", {}), "focal": ("DNN, focal (gamma 2, alpha 0.25)", {"loss": "focal"}),
          "ghm": ("DNN, GHM-C (30 bins, momentum 0.75)", {"loss": "ghm"})}


def run(funnel, dataset, name, overrides, seed, out_dir, threads):
    def command(report):
        line = [funnel, "train-ranker", "--data", os.path.join(ROOT, "datasets", DATASETS[dataset]), "--seed", str(seed),
                "--threads", str(threads),
                "--out", os.path.join(out_dir, f"{name}-seed{seed}.funnel"), "--report", report,
                "--metrics-log", os.path.join(out_dir, f"{name}-seed{seed}.jsonl")]
        for key, value in overrides.items():
            if key == "coaction" and value == "four":
                value = json.dumps(FOUR.get(dataset, FOUR_DEFAULT).split(","))
            line += ["--set", f"{key}={value}"]
        print(f"{dataset}: {name} seed {seed} ...", file=sys.stderr, flush=True)
        return line

    return run_once(os.path.join(out_dir, f"{name}-seed{seed}.json"), command, f"run '{name}' seed {seed}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--study", choices=["models", "losses"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=None, help="subset of the variants (models) or losses to run")
    parser.add_argument("--funnel", default=os.path.join(ROOT, "build", "release", "train", "funnel"))
    parser.add_argument("--threads", type=int, default=0, help="threads per run (0: every core); two studies side by side "
                        "on two cores run faster with 1 each")
    parser.add_argument("--extra", nargs="*", default=[], help="config overrides for every run, KEY=VALUE (e.g. data_seed=1)")
    args = parser.parse_args()
    table = VARIANTS if args.study == "models" else LOSSES
    names = args.variants or list(table)
    out_dir = os.path.join(ROOT, "build", "study", f"ctr-{args.dataset}")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name in names:
        label, overrides = table[name]
        overrides = dict(overrides)
        if args.study == "losses":
            overrides.update({"model": "dnn", "negatives": 10})
        overrides.update(e.split("=", 1) for e in args.extra)
        slug = ("loss-" if args.study == "losses" else "") + name + "".join("-" + e.replace("=", "") for e in args.extra)
        reports = [run(args.funnel, args.dataset, slug, overrides, s, out_dir, args.threads) for s in args.seeds]
        rows.append((label, reports))
    print(f"\n{args.dataset}, seeds {' '.join(map(str, args.seeds))}{', ' + ' '.join(args.extra) if args.extra else ''}\n")
    print("| model | params | epochs chosen | test AUC | test GAUC | test LogLoss | samples/s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for label, reports in rows:
        test = [r["test"] for r in reports]
        print(f"| {label} | {reports[0]['parameters']:,} | {','.join(str(r['best_epoch']) for r in reports)} | "
              f"{mean_sd([t['auc'] for t in test])} | {mean_sd([t['gauc'] for t in test])} | {mean_sd([t['logloss'] for t in test])} | "
              f"{statistics.mean(r['samples_per_second'] for r in reports):,.0f} |")


if __name__ == "__main__":
    main()
