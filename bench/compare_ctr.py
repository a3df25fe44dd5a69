#!/usr/bin/python3
"""Funnel against the PyTorch reference (../shared/peers/ctr_can.py) on Amazon Beauty: the same protocol
(instances, 1 negative per positive, features, DNN and CAN, Glorot initialisation, Adam, batch 128,
3 epochs, epoch chosen on validation AUC), run one after the other on this machine with nothing else
running. Prints a table of test AUC / GAUC / LogLoss and training samples per second, and writes JSON lines.

    bench/compare_ctr.py [--models dnn can-item can-item-cate] [--seeds 0 1 2] [--optim adam lazyadam]

Needs Debian's python3-torch (for the reference) and build/release/train/funnel. Throughput is labelled
training instances per second of the training loop alone, as the reference measures it. The reference
runs with OpenBLAS (LD_LIBRARY_PATH), as in its README.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from study_common import mean_sd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "..", "shared", "peers")
FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"

# model name -> (reference flags, Funnel --set overrides)
MODELS = {
    "dnn": (["--model", "dnn"], {"model": "dnn"}),
    "can-item": (["--model", "can", "--coaction", "item"], {"coaction": '["item_id:item_id"]'}),
    "can-item-cate": (["--model", "can", "--coaction", "item,cate"], {}),
}


def run_reference(model, seed, optim):
    env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS)
    out = subprocess.run(["/usr/bin/python3", "ctr_can.py", "--seed", str(seed), "--optim", optim] + MODELS[model][0],
                         cwd=PEERS, env=env, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"auc": r["test"]["auc"], "gauc": r["test"]["gauc"], "logloss": r["test"]["logloss"], "best_epoch": r["best_epoch"],
            "samples_per_second": r["samples_per_sec"], "params": r["params"]}


def run_funnel(model, seed, optim):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        command = [FUNNEL, "train-ranker", "--data", os.path.join(ROOT, "datasets", "amazon-beauty-ctr.json"), "--seed", str(seed),
                   "--out", os.path.join(tmp, "m.funnel"), "--report", report,
                   "--set", "optimizer=" + ("lazy_adam" if optim == "lazyadam" else "adam")]
        for key, value in MODELS[model][1].items():
            command += ["--set", f"{key}={value}"]
        subprocess.run(command, check=True, capture_output=True, text=True)
        r = json.load(open(report))
    return {"auc": r["test"]["auc"], "gauc": r["test"]["gauc"], "logloss": r["test"]["logloss"], "best_epoch": r["best_epoch"],
            "samples_per_second": r["samples_per_second"], "params": r["parameters"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optim", nargs="+", default=["adam"], choices=["adam", "lazyadam"])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "ctr.jsonl"))
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(PEERS, "..", "data", "amazon-beauty-s3rec")):
        sys.exit("../shared/data/amazon-beauty-s3rec is absent: nothing to compare on")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    rows = []
    with open(args.out, "a") as log:
        for optim in args.optim:
            for model in args.models:
                for seed in args.seeds:
                    for system, run in (("reference", run_reference), ("funnel", run_funnel)):
                        print(f"running {system}, {model}, {optim}, seed {seed} ...", file=sys.stderr, flush=True)
                        row = dict(system=system, model=model, optim=optim, seed=seed, **run(model, seed, optim))
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                        rows.append(row)
    print("| system | model | optimiser | seeds | params | epochs chosen | test AUC | test GAUC | test LogLoss | samples/s |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for optim in args.optim:
        for model in args.models:
            for system in ("reference", "funnel"):
                g = [r for r in rows if r["system"] == system and r["model"] == model and r["optim"] == optim]
                print(f"| {system} | {model} | {optim} | {','.join(str(r['seed']) for r in g)} | {g[0]['params']:,} | "
                      f"{','.join(str(r['best_epoch']) for r in g)} | {mean_sd([r['auc'] for r in g])} | {mean_sd([r['gauc'] for r in g])} | "
                      f"{mean_sd([r['logloss'] for r in g])} | {statistics.mean(r['samples_per_second'] for r in g):,.0f} |")
            ref = [r["samples_per_second"] for r in rows if r["system"] == "reference" and r["model"] == model and r["optim"] == optim]
            fun = [r["samples_per_second"] for r in rows if r["system"] == "funnel" and r["model"] == model and r["optim"] == optim]
            print(f"|  | {model}, {optim}: Funnel / reference throughput = {statistics.mean(fun) / statistics.mean(ref):.1f}x |||||||||")


if __name__ == "__main__":
    main()
