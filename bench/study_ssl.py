#!/usr/bin/python3
"""The self-supervised auxiliary task study (docs/studies/ssl.md): the two-tower baseline against the
auxiliary task with Random (RFM) and Correlated (CFM) Feature Masking and against spread-out regularisation
(the softmax form, i.e. identity augmentation, and the square-loss form), on the real datasets in
../shared/data, over seeds; overall and tail-item Recall@50 and NDCG@10 on the test users, beside the
validation Recall@50 that settings are chosen by.

    bench/study_ssl.py --dataset ml-100k-year --study grid [--seeds 0 1 2] [--jobs 2]
    bench/study_ssl.py --dataset ml-100k-year --study fractions --pick rfm:0.3:0.2 cfm:0.3:0.2 ...
    bench/study_ssl.py --dataset ml-100k-year --study variants --pick cfm:0.3:0.2

  grid       baseline; rfm, cfm and spread_out at alpha in {0.1, 0.3, 1.0} x tau in {0.1, 0.2, 0.5};
             spread_out_square at alpha in {0.1, 0.3, 1.0}
  fractions  baseline and the --pick settings (method:alpha:tau) on 10%, 50% and 100% of the training
             interactions (--fractions)
  variants   the first --pick setting with G sharing the MLP fully / partly / not at all, with items drawn
             by the interactions instead of uniformly, and without value dropout

Runs go `--jobs` at a time with one thread each (the towers' two-way parallelism gains less than running
two trainings side by side on two cores). Each run's report is kept under build/study/ssl-<dataset>/, and a
run whose report exists is not run again, so a study can be resumed or extended.
"""
import argparse
import concurrent.futures
import os
import statistics
import sys

from study_common import mean_sd, run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")
DATASETS = {name: name + ".json" for name in ("ml-100k", "ml-100k-year", "ml-1m", "ml-1m-year")}
METRICS = [("R@50", "recall@50"), ("NDCG@10", "ndcg@10"), ("tail R@50", "tail_recall@50"), ("tail NDCG@10", "tail_ndcg@10")]


def parse_pick(text):
    method, alpha, tau = (text.split(":") + ["0.3", "0.2"])[:3]
    return method, float(alpha), float(tau)


def setting(method, alpha, tau):
    """A run's name and its config overrides."""
    if method == "baseline":
        return "baseline", {}
    if method == "spread_out_square":
        return f"spread_out_square a={alpha}", {"ssl": method, "ssl_alpha": alpha}
    return f"{method} a={alpha} t={tau}", {"ssl": method, "ssl_alpha": alpha, "ssl_temperature": tau}


def plan(args):
    runs = []
    if args.study == "grid":
        runs.append(setting("baseline", 0, 0))
        for method in ("rfm", "cfm", "spread_out"):
            runs += [setting(method, a, t) for a in (0.1, 0.3, 1.0) for t in (0.1, 0.2, 0.5)]
        runs += [setting("spread_out_square", a, 0) for a in (0.1, 0.3, 1.0)]
    elif args.study == "fractions":
        for fraction in args.fractions:
            for name, overrides in [setting("baseline", 0, 0)] + [setting(*parse_pick(p)) for p in args.pick]:
                suffix = "" if fraction == 1.0 else f", {fraction:.0%} data"
                runs.append((name + suffix, dict(overrides, train_fraction=fraction) if fraction < 1.0 else overrides))
    else:
        name, overrides = setting(*parse_pick(args.pick[0]))
        runs.append((name, overrides))
        runs.append((name + ", G shares all but the last layer", dict(overrides, ssl_share_mlp="partial")))
        runs.append((name + ", G shares the embeddings only", dict(overrides, ssl_share_mlp="none")))
        runs.append((name + ", items by interactions", dict(overrides, ssl_sampling="training")))
        runs.append((name + ", no value dropout", dict(overrides, ssl_dropout=0)))
    return runs


def run(name, overrides, seed, args, out_dir):
    slug = f"{name}-s{seed}".replace(" ", "_").replace("=", "").replace(",", "").replace("%", "pct")

    def command(report):
        line = [FUNNEL, "train", "--data", os.path.join(ROOT, "datasets", DATASETS[args.dataset]), "--epochs", str(args.epochs),
                "--out", os.path.join(out_dir, slug + ".funnel"), "--report", report,
                "--metrics-log", os.path.join(out_dir, slug + ".jsonl"), "--set", f"seed={seed}", "--set", "threads=1"]
        for key, value in list(overrides.items()) + [e.split("=", 1) for e in args.extra]:
            line += ["--set", f"{key}={value}"]
        return line

    return run_once(os.path.join(out_dir, slug + ".json"), command, f"run '{name}' seed {seed}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--study", choices=["grid", "fractions", "variants"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--pick", nargs="*", default=["cfm:0.3:0.2"], help="method:alpha:tau settings (fractions, variants)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.5, 1.0], help="training shares (fractions)")
    parser.add_argument("--extra", nargs="*", default=[], help="config overrides for every run, KEY=VALUE")
    args = parser.parse_args()
    out_dir = os.path.join(ROOT, "build", "study", f"ssl-{args.dataset}-e{args.epochs}" + "".join("-" + e for e in args.extra))
    os.makedirs(out_dir, exist_ok=True)
    runs = plan(args)
    jobs = [(name, overrides, seed) for name, overrides in runs for seed in args.seeds]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {(name, seed): pool.submit(run, name, overrides, seed, args, out_dir) for name, overrides, seed in jobs}
        for i, ((name, seed), future) in enumerate(futures.items()):
            future.result()
            print(f"[{i + 1}/{len(jobs)}] {name} seed {seed}", file=sys.stderr, flush=True)

    print(f"\n{args.dataset}, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}"
          f"{', ' + ' '.join(args.extra) if args.extra else ''} (mean ± sd over seeds)\n")
    print("| run | best epoch | validation R@50 | " + " | ".join(m for m, _ in METRICS) + " | s/run |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in METRICS) + " | ---: |")
    for name, overrides in runs:
        reports = [futures[(name, seed)].result() for seed in args.seeds]
        epochs = "/".join(str(r["best_epoch"]) for r in reports)
        # The validation score the run chose its epoch by: settings are compared on it, not on test.
        cells = [mean_sd([r["per_epoch_validation"][r["best_epoch"] - 1]["recall@50"] for r in reports])]
        cells += [mean_sd([r["test"][key] for r in reports]) for _, key in METRICS]
        seconds = statistics.mean(r["total_seconds"] for r in reports)
        print(f"| {name} | {epochs} | " + " | ".join(cells) + f" | {seconds:.0f} |")


if __name__ == "__main__":
    main()
