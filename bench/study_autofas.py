#!/usr/bin/python3
"""The AutoFAS study (docs/studies/autofas.md): on a real CTR dataset, one ranking teacher (CAN), then
pre-ranking students searched with several lambda2 on the layer latencies measured natively, one searched on
the latencies measured in WASM (Node), and the hand-made baselines: a small fixed MLP over every field and a
two-tower dot product. For each: the student's test AUC, how much of the teacher's top 10 among 1,000
candidates it keeps in its own top 10/50/100, and the SDK's time per 1,000 candidates natively (the
`funnel autofas` report) and in WASM (wasm/tools/stage_latency.mjs), beside the teacher's.

  bench/study_autofas.py --out build/study/autofas          # Amazon Beauty, the default settings below
Runs resume: a run whose report exists is not repeated (delete the report to redo it).
"""
import argparse
import json
import os
import random
import subprocess
import sys

from study_common import run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Assumed fetch costs per 1,000 candidates (microseconds): a candidate's own features come with it; the
# behaviour sequence is a per-user fetch from a feature store; the user id's embedding row a small one.
FIELD_COSTS = {"candidate:item_id": 20, "candidate:category": 20, "behaviours:item_id": 400, "behaviours:category": 400,
               "user:user_id": 100}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "build/study/autofas"))
    parser.add_argument("--funnel", default=os.path.join(ROOT, "build/release/train/funnel"))
    parser.add_argument("--dataset", default=os.path.join(ROOT, "datasets/amazon-beauty-ctr.json"))
    parser.add_argument("--lambda2", type=float, nargs="+", default=[0, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4])
    parser.add_argument("--wasm-lambda2", type=float, nargs="+", default=[1e-6, 3e-6, 1e-5])
    parser.add_argument("--lambda", dest="lambdas", type=float, nargs="+", default=[2e-3],
                        help="extra runs with a larger feature-latency weight (lambda2 1e-5, native table)")
    parser.add_argument("--search-fraction", type=float, default=0.25)
    parser.add_argument("--requests", type=int, default=30, help="WASM timing requests per model")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = lambda name: os.path.join(args.out, name)

    # The latency tables, measured here by the SDK: natively and in WASM under Node.
    tables = {"native": out("latency-native.json"), "wasm": out("latency-wasm-node.json")}
    if not os.path.exists(tables["native"]):
        subprocess.run([args.funnel, "bench-layers", "--out", tables["native"]], check=True)
    if not os.path.exists(tables["wasm"]):
        subprocess.run(["node", os.path.join(ROOT, "wasm/tools/bench_layers.mjs"), "--out", tables["wasm"]], check=True)

    common = ["--data", args.dataset, "--epochs", "1", "--set", 'user_features=["user_id"]',
              "--set", "teacher_cache=" + out("teacher.bin"), "--set", f"search_fraction={args.search_fraction}",
              "--set", "student_epochs=2", "--set", "operators=[0,16,32,64,128,256]",
              "--set", "field_costs=" + json.dumps(FIELD_COSTS)]
    variants = [(f"AutoFAS, λ2 {l2:g}, native table", f"native-l2-{l2:g}",
                 ["--set", "lambda=0.0002", "--set", f"lambda2={l2}", "--set", "latency_table=" + tables["native"]]) for l2 in args.lambda2]
    variants += [(f"AutoFAS, λ2 {l2:g}, WASM table", f"wasm-l2-{l2:g}",
                  ["--set", "lambda=0.0002", "--set", f"lambda2={l2}", "--set", "latency_table=" + tables["wasm"]]) for l2 in args.wasm_lambda2]
    variants += [(f"AutoFAS, λ {l:g}, λ2 1e-05, native table", f"native-l-{l:g}-l2-1e-05",
                  ["--set", f"lambda={l}", "--set", "lambda2=1e-05", "--set", "latency_table=" + tables["native"]]) for l in args.lambdas]
    variants.append(("fixed MLP [32] over every field; two-tower dot product", "fixed-32",
                     ["--set", "student=fixed", "--set", "fixed_layers=[32]", "--set", "two_tower_epochs=5",
                      "--set", "latency_table=" + tables["native"]]))

    # Item keys and a user, for the WASM timing requests (read from the dataset, never copied anywhere).
    keys_file = out("item-keys.txt")
    if not os.path.exists(keys_file):
        description = json.load(open(args.dataset))
        items_path = os.path.join(os.path.dirname(args.dataset), description["root"], description["items"]["path"])
        keys = list(json.load(open(items_path)).keys())
        random.Random(0).shuffle(keys)
        open(keys_file, "w").write("\n".join(keys[:5000]) + "\n")

    rows = []
    for title, name, extra in variants:
        report = run_once(out(name + ".json"), lambda partial: [args.funnel, "autofas", *common, *extra,
                                                                 "--out", out(name + ".funnel"), "--report", partial], title)
        wasm_file = out(name + ".wasm.json")
        if not os.path.exists(wasm_file):
            timing = subprocess.run(["node", os.path.join(ROOT, "wasm/tools/stage_latency.mjs"), out(name + ".funnel"), keys_file,
                                     "--requests", str(args.requests), "--user", '{"user_id": "1"}'],
                                    capture_output=True, text=True, check=True)
            open(wasm_file, "w").write(timing.stdout)
        rows.append((title, report, json.load(open(wasm_file))))
        print(f"done: {title}", file=sys.stderr)

    print("| variant | fields kept | layers | student test AUC | teacher's top 10 kept in the student's top 10 / 50 / 100 "
          "| native µs per 1,000 (student / teacher) | WASM µs per 1,000 (student / teacher) | predicted µs on its table |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for title, report, wasm in rows:
        search, agreement, sdk = report["search"], report["agreement"], report["sdk_us_per_1000"]
        recall = " / ".join(f"{r:.3f}" for r in agreement["recall_of_top10"])
        native = f"{sdk['pre_ranking']:.0f} / {sdk['ranking']:.0f} ({100 * sdk['pre_ranking'] / sdk['ranking']:.1f}%)"
        w = f"{wasm['pre_ranking_us_per_1000']:.0f} / {wasm['ranking_us_per_1000']:.0f} " \
            f"({100 * wasm['pre_ranking_us_per_1000'] / wasm['ranking_us_per_1000']:.1f}%)"
        layers = " → ".join([str(int(search["input_width"]))] + [str(x) for x in search["layers"]] + ["1"])
        print(f"| {title} | {', '.join(search['features'])} | {layers} | {report['student']['test']['auc']:.4f} | {recall} | {native} | {w} "
              f"| {search['predicted_us_per_1000']:.0f} |")
        if report.get("two_tower"):
            tt = report["two_tower"]
            print(f"| two-tower dot product (retrieval trainer, 5 epochs) | user:user_id; candidate:item_id, category | towers → 32 | — "
                  f"| {' / '.join(f'{r:.3f}' for r in tt['recall_of_top10'])} | {tt['us_per_1000']:.0f} / {sdk['ranking']:.0f} | — | — |")
    teacher = rows[0][1]["teacher"]["test"]
    print(f"\nTeacher (CAN, 1 epoch): test AUC {teacher['auc']:.4f}, GAUC {teacher['gauc']:.4f}.")


if __name__ == "__main__":
    main()
