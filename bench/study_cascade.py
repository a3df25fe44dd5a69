#!/usr/bin/env python3
"""The cascade study (docs/studies/cascade.md): per dataset, the whole funnel trained by one command
(funnel train-funnel), then the final top 10 on the test split for retrieval alone, retrieval + ranking and
retrieval + pre-ranking + ranking over a grid of K1 and K2, natively (funnel eval, one request at a time) and
in WebAssembly (wasm/tools/eval_cascade.mjs replaying the same requests in Node). Each step keeps its output
under build/study/cascade/ and is skipped when that output exists, so the study resumes where it stopped; the
tables are printed from those outputs.
  bench/study_cascade.py [--datasets ml-1m amazon-beauty]
Needs the release build (build/release/train/funnel) and the WASM package (build/wasm/package)."""
import argparse
import json
import os
import subprocess
import sys

from study_common import run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNNEL = os.path.join(ROOT, "build/release/train/funnel")
OUT = os.path.join(ROOT, "build/study/cascade")
RETRIEVE_K = "100,500,1000"
PRERANK_K = "50,100,200"
# Retrieval as the retrieval study trains these datasets (lazy Adam; ml-1m for 10 epochs); ranking and the
# AutoFAS search with their defaults; the latency table measured by train-funnel on this machine.
TRAIN_SETTINGS = {
    "ml-1m": ["--set", "retrieval.epochs=10", "--set", "retrieval.optimizer=lazy_adam"],
    "amazon-beauty": ["--set", "retrieval.optimizer=lazy_adam"],
}


def step(output, command, what):
    """Runs `command` (its stdout into `output`) unless `output` exists; written only when the run succeeds."""
    if os.path.exists(output):
        return
    print(f"{what}: {' '.join(command)}", file=sys.stderr)
    partial = output + ".partial"
    with open(partial, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        sys.exit(f"{what} failed")
    os.replace(partial, output)


def run_dataset(name):
    model = os.path.join(OUT, f"{name}.funnel")
    data = os.path.join(ROOT, "datasets", f"{name}.json")
    train = run_once(os.path.join(OUT, f"{name}-train.json"),
                     lambda report: [FUNNEL, "train-funnel", "--data", data, "--out", model, "--report", report]
                     + TRAIN_SETTINGS.get(name, []), f"{name}: train-funnel")
    requests = os.path.join(OUT, f"{name}-requests.jsonl")
    native = os.path.join(OUT, f"{name}-native.json")
    step(native, [FUNNEL, "eval", "--data", data, "--model", model, "--retrieve-k", RETRIEVE_K, "--prerank-k", PRERANK_K,
                  "--threads", "1", "--requests-out", requests, "--json"], f"{name}: native cascade grid")
    wasm = os.path.join(OUT, f"{name}-wasm.json")
    step(wasm, ["node", "wasm/tools/eval_cascade.mjs", "--model", model, "--requests", requests, "--retrieve-k", RETRIEVE_K,
                "--prerank-k", PRERANK_K], f"{name}: WebAssembly cascade grid")
    return train, json.load(open(native)), json.load(open(wasm))


def table(name, train, native, wasm):
    rows = native["cascade"]
    print(f"\n### {name}: {rows[0]['users']} test users, final top {rows[0]['k']}\n")
    print("| stages | K1 | K2 | Recall@10 | NDCG@10 | native ms: retrieval | pre-ranking | ranking | total | WASM total ms | WASM / native |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r, w in zip(rows, wasm):
        assert (r["stages"], r["retrieve_k"], r["prerank_k"]) == (w["stages"], w["retrieve_k"], w["prerank_k"])
        same = "" if abs(r["recall"] - w["recall"]) < 1e-12 and abs(r["ndcg"] - w["ndcg"]) < 1e-12 else \
            f" (WASM {w['recall']:.4f} / {w['ndcg']:.4f})"
        print(f"| {r['stages']} | {r['retrieve_k'] or '–'} | {r['prerank_k'] or '–'} | {r['recall']:.4f} | {r['ndcg']:.4f}{same} "
              f"| {r['retrieval_ms']:.3f} | {r['pre_ranking_ms']:.3f} | {r['ranking_ms']:.3f} | {r['total_ms']:.3f} "
              f"| {w['total_ms']:.3f} | {w['total_ms'] / r['total_ms']:.2f}× |")
    ranking = train.get("ranking", {})
    if ranking:
        print(f"\nRanking test AUC {ranking['test']['auc']:.4f} (the CAN teacher), pre-ranking test AUC "
              f"{ranking['pre_ranking_test']['auc']:.4f} (the AutoFAS student); retrieval test Recall@10 "
              f"{train['retrieval']['test']['recall@10']:.4f}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "amazon-beauty"])
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name in args.datasets:
        table(name, *run_dataset(name))


if __name__ == "__main__":
    main()
