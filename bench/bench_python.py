#!/usr/bin/env python3
"""What the Python module costs over the C++ it wraps (issue 22's targets), measured, not asserted:

- funnel.Model.retrieve (top 10 of a 100,000 x 64 f32 catalogue): the Python call's time minus the same
  Model::retrieve call timed in a C++ loop in the same binary (funnel._funnel._native_retrieve_seconds), per
  call; the target is at most 10 us;
- funnel.Model.retrieve_batch of 64 users against Model::retrieve_batch the same way; target within 10 %;
- training: funnel.train's samples/s against the CLI's (`funnel train --report`) on the same data and
  config; target within 5 %.

Run with Debian's Python, the module installed (pip install --no-build-isolation ./bindings/python) and the
release build's CLI (scripts/setup.sh; funnel_build release):
    /usr/bin/python3 bench/bench_python.py [--cli build/release/train/funnel] [--work build/bench-python] [--rounds 7]
        [--epochs 2] [--threads 0] [--only serving|training]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import funnel
from funnel import _funnel


def users_of(description, count):
    rows = list(csv.reader(open(Path(description).parent / "users.csv")))[1 : count + 1]
    return [{"user_id": r[0], "age": float(r[1]), "region": r[2], "device": r[3]} for r in rows]


def per_call(call, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def model_of(work, items):
    data = funnel.generate(str(work / f"data-{items}"), users=20, items=items, seed=1)
    model_path = work / f"items{items}-dim64.funnel"
    if not model_path.exists():
        funnel.train(data, config={"epochs": 1, "output_dim": 64}, out=model_path, progress=None)
    return data, funnel.Model.load(model_path)


def retrieve_times(model, user, repeats, rounds):
    python, native = [], []
    for _ in range(rounds):  # interleaved, so that the machine's other work falls on both alike
        native.append(_funnel._native_retrieve_seconds(model, user, 10, repeats))
        python.append(per_call(lambda: model.retrieve(user, k=10), repeats))
    return [x * 1e6 for x in native], [x * 1e6 for x in python]


def serving(work, items, rounds):
    data, model = model_of(work, items)
    info = model.inspect()
    print(f"model: {model.catalogue_size} items x {model.embedding_dim} ({info['catalogue_precision']}), kernels {info['kernels']}")
    users = users_of(data, 64)
    user = users[0]
    repeats = 2000
    native, python = retrieve_times(model, user, repeats, rounds)
    n, p = statistics.median(native), statistics.median(python)
    print(f"retrieve top 10: native {n:.2f} us, Python {p:.2f} us per call: difference {p - n:.2f} us "
          f"(median of {rounds} rounds of {repeats} calls; min native {min(native):.2f}, min Python {min(python):.2f})")
    # The scan of 100,000 rows takes milliseconds and varies by more than the overhead on a shared machine, so
    # the overhead itself is measured where the scan is short: the same towers and features, 1,000 items. The
    # binding's work per call (the dict to features, the arrays of k results) does not depend on the items.
    _, small = model_of(work, 1000)
    native, python = retrieve_times(small, user, 20000, rounds)
    overhead = [p - n for n, p in zip(native, python)]
    print(f"retrieve overhead, 1,000-item model: native {statistics.median(native):.2f} us, Python "
          f"{statistics.median(python):.2f} us per call: overhead {statistics.median(overhead):.2f} us "
          f"(median of {rounds} rounds of 20,000 calls, each round's Python minus its native; target <= 10 us)")
    batch_repeats = 10
    python, native = [], []
    for _ in range(rounds):
        native.append(_funnel._native_retrieve_batch_seconds(model, users, 10, batch_repeats))
        python.append(per_call(lambda: model.retrieve_batch(users, k=10), batch_repeats))
    n, p = statistics.median(native) * 1e3, statistics.median(python) * 1e3
    ratio = statistics.median(b / a for a, b in zip(native, python))
    print(f"retrieve_batch of 64 users: native {n:.3f} ms, Python {p:.3f} ms per call: {100 * (ratio - 1):+.2f} % "
          f"(median over {rounds} rounds of {batch_repeats} calls of each round's Python / native; min native {min(native) * 1e3:.3f}, "
          f"min Python {min(python) * 1e3:.3f}; target within 10 %)")


def training(work, cli, rounds, config):
    data = funnel.generate(str(work / "data-train"), seed=42)  # the default built-in dataset: 3,000 users, 1,000 items
    config_path = work / "train-config.json"
    config_path.write_text(json.dumps(config))
    cli_rates, python_rates = [], []
    for r in range(rounds):
        report = work / "cli-report.json"
        subprocess.run([cli, "train", "--data", data, "--config", str(config_path), "--out", str(work / "cli.funnel"),
                        "--report", str(report)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli_rates.append(json.loads(report.read_text())["samples_per_second"])
        python_rates.append(funnel.train(data, config=config, out=work / "python.funnel", progress=None).samples_per_second)
    tqdm_rate = funnel.train(data, config=config, out=work / "python.funnel").samples_per_second
    c, p = statistics.median(cli_rates), statistics.median(python_rates)
    print(f"training ({json.dumps(config)}): CLI {c:.0f} samples/s, Python {p:.0f} samples/s: {100 * (p / c - 1):+.2f} % "
          f"(median of {rounds} runs each, alternating; target within 5 %); with the default tqdm bar {tqdm_rate:.0f}")
    print(f"  CLI runs {[round(x) for x in cli_rates]}, Python runs {[round(x) for x in python_rates]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default="build/release/train/funnel")
    parser.add_argument("--work", default="build/bench-python")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="the training config's threads (0: every core)")
    parser.add_argument("--only", choices=["serving", "training"], help="run one half")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, funnel {funnel.__version__}")
    if args.only != "training":
        serving(work, args.items, args.rounds)
    if args.only == "serving":
        return
    if not os.access(args.cli, os.X_OK):
        print(f"skipped: the training comparison needs the CLI at {args.cli} (funnel_build release)")
        return
    training(work, args.cli, max(2, args.rounds // 2), {"epochs": args.epochs, "seed": 1, "threads": args.threads})


if __name__ == "__main__":
    main()
