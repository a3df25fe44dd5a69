#!/usr/bin/python3
"""The sparse-optimiser study (docs/studies/sparse_optimiser.md): dense Adam, lazy Adam, sparse Adam with
per-row step counts, momentum-tail Adam and row-wise Adagrad on the embedding tables of the two-tower model, over seeds, on the
real datasets in ../shared/data. In-batch softmax at batch 256, the retrieval study's protocol otherwise.
Each run keeps its report under build/study/sparse-optimiser/, so an interrupted study resumes; the table
(mean ± sd over the seeds) is printed at the end.

    bench/study_sparse_optimizer.py [--datasets ml-1m amazon-beauty amazon-grocery] [--seeds 0 1 2]
                                    [--epochs 10] [--patience 0] [--optimizers adam lazy_adam sparse_adam momentum_tail_adam rowwise_adagrad]
"""
import argparse
import json
import os
import sys

from study_common import mean_sd, run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")
DATA_FOLDERS = {"ml-1m": "ml-1m", "amazon-beauty": "amazon-beauty-s3rec", "amazon-grocery": "amazon-grocery-rechorus"}
# Every optimiser applies to every embedding table (sparse_optimizer_min_rows=0): the study compares the
# optimisers, the default's threshold is decided from it afterwards.
OPTIMIZERS = {
    "adam": ["optimizer=adam", "sparse_optimizer=none"],
    "lazy_adam": ["optimizer=lazy_adam", "sparse_optimizer=none"],
    "sparse_adam": ["sparse_optimizer=sparse_adam", "sparse_optimizer_min_rows=0"],
    "momentum_tail_adam": ["sparse_optimizer=momentum_tail_adam", "sparse_optimizer_min_rows=0"],
    # Adagrad's steps shrink as 1/sqrt(touches): FBGEMM's and TorchRec's examples run it at 10x Adam's rate or more.
    "rowwise_adagrad": ["sparse_optimizer=rowwise_adagrad", "sparse_optimizer_min_rows=0", "sparse_learning_rate=0.01"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATA_FOLDERS), choices=DATA_FOLDERS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=0, help="early_stopping_patience (0: every epoch)")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--extra", nargs="*", default=[], help="config overrides for every run, KEY=VALUE")
    parser.add_argument("--tag", default="", help="a name for this variant's report folder")
    parser.add_argument("--table-only", action="store_true", help="print the table of the reports there are, run nothing")
    args = parser.parse_args()
    out_dir = os.path.join(ROOT, "build", "study", "sparse-optimiser" + ("-" + args.tag if args.tag else ""))
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for dataset in args.datasets:
        if not os.path.isdir(os.path.join(ROOT, "..", "shared", "data", DATA_FOLDERS[dataset])):
            print(f"skipped: ../shared/data/{DATA_FOLDERS[dataset]} is absent", file=sys.stderr)
            continue
        for seed in args.seeds:
            for name in args.optimizers:
                slug = f"{dataset}_{name}_seed{seed}"
                sets = OPTIMIZERS[name] + [f"early_stopping_patience={args.patience}"] + args.extra

                def command(report, slug=slug, sets=sets, seed=seed, dataset=dataset):
                    c = [FUNNEL, "train", "--data", os.path.join(ROOT, "datasets", dataset + ".json"), "--epochs", str(args.epochs),
                         "--batch-size", "256", "--seed", str(seed), "--out", os.path.join(out_dir, slug + ".funnel"), "--report", report]
                    for s in sets:
                        c += ["--set", s]
                    return c

                if args.table_only:
                    if os.path.exists(os.path.join(out_dir, slug + ".json")):
                        results[(dataset, name, seed)] = json.load(open(os.path.join(out_dir, slug + ".json")))
                    continue
                print(f"{slug} ...", file=sys.stderr, flush=True)
                results[(dataset, name, seed)] = run_once(os.path.join(out_dir, slug + ".json"), command, slug)
    print(f"\n{args.epochs} epochs, batch 256, early_stopping_patience={args.patience}, seeds {args.seeds}"
          f"{', ' + ' '.join(args.extra) if args.extra else ''}; mean ± sd over the seeds\n")
    print("| dataset | optimiser | seeds | best epoch | R@10 | R@50 | NDCG@10 | tail R@50 | samples/s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for dataset in args.datasets:
        for name in args.optimizers:
            seeds = [s for s in args.seeds if (dataset, name, s) in results]
            runs = [results[(dataset, name, s)] for s in seeds]
            if not runs:
                continue
            test = lambda key: [r["test"][key] for r in runs]
            print(f"| {dataset} | {name} | {', '.join(str(s) for s in seeds)} | {', '.join(str(r['best_epoch']) for r in runs)} | {mean_sd(test('recall@10'))} | "
                  f"{mean_sd(test('recall@50'))} | {mean_sd(test('ndcg@10'))} | {mean_sd(test('tail_recall@50'))} | "
                  f"{mean_sd([r['samples_per_second'] for r in runs], 0)} |")


if __name__ == "__main__":
    main()
