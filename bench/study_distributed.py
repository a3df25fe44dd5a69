#!/usr/bin/python3
"""The distributed study (docs/studies/distributed.md), issue 21 point 4: on one machine, 2 MPI ranks x 1 thread
(per-rank batch b) against 1 process x 2 threads (batch 2b), the same global batch and epochs; the bytes rank 0
sends per step, measured by OpenMPI's monitoring components, against a model of each exchange; the time-per-step
model for N nodes; and whether global negatives (2 ranks x b = 2b in-batch negatives) help, against 1 process at b,
at 2b and CBNS at b with a bank of b.

    cd bench
    python3 study_distributed.py --dataset ml-1m --seeds 0 1 --epochs 1       # 2x1 1x2 1x2-b 1x2-cbns
    python3 study_distributed.py --dataset ml-1m --seeds 2 --configs 2x1 1x1-b 1x1-2b 1x2   # + the compute
        # calibration and the time-per-step model for N nodes (printed once 1x1-b and 1x1-2b runs exist)
    python3 study_distributed.py --dataset gen10m --seeds 0 --configs 2x1 1x2 --extra train_fraction=0.1
    python3 study_distributed.py --dataset ml-1m --model-only     # the bytes model alone

Runs are interleaved (seed by seed, every configuration once per seed) so that the shared machine's load falls
on each alike; each run records the 1-minute load average before and after and the CPU seconds its processes
used. A run whose report exists is not repeated (delete build/study/distributed/<dataset>/ to start over).
The 2-rank runs start under `mpirun --mca pml_monitoring_enable 2`: OpenMPI counts, per peer, the bytes each
rank's collectives put on the wire (the algorithm's own messages, not the call's payload) and writes them at
MPI_Finalize; rank 0's all-to-all-class bytes divided by the optimiser steps are the measured bytes per step.
"""
import argparse
import collections
import gzip
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time

from study_common import run_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "study", "distributed")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
# The ~10M-interaction generated set: 100K users x ~100 interactions over 10K items.
GEN10M = ["--users", "100000", "--items", "10000", "--mean-interactions", "100"]


def dataset_json(name):
    if name == "gen10m":
        folder = os.path.join(OUT, "gen10m")
        if not os.path.exists(os.path.join(folder, "dataset.json")):
            subprocess.run([FUNNEL, "generate", "--out", folder] + GEN10M, check=True)
        return os.path.join(folder, "dataset.json")
    return os.path.join(ROOT, "datasets", name + ".json")


# name: (ranks, threads, per-rank batch as a multiple of b, extra config)
def configurations(b):
    return {
        "2x1": (2, 1, b, {}),                                            # 2 ranks x 1 thread, global negatives 2b
        "1x2": (1, 2, 2 * b, {}),                                        # 1 process x 2 threads, batch 2b
        "1x2-b": (1, 2, b, {}),                                          # 1 process, batch b: b negatives
        "1x2-cbns": (1, 2, b, {"negatives": "cbns", "memory_size": b}),  # batch b + a bank of b
        "1x1-b": (1, 1, b, {}),                                          # the compute term's calibration
        "1x1-2b": (1, 1, 2 * b, {}),
        "1x1-4b": (1, 1, 4 * b, {}),
        "1x1-cbns": (1, 1, b, {"negatives": "cbns", "memory_size": b}),  # the quality runs over more epochs
        # the same two, with waiting processes and threads that sleep instead of spinning (see LAUNCH)
        "2x1-yield": (2, 1, b, {}),
        "1x2-passive": (1, 2, 2 * b, {}),
    }


# How a configuration waits: OpenMPI's ranks and GNU OpenMP's threads spin while they wait for a partner by
# default; on a machine with more runnable processes than cores the partner may not be running.
LAUNCH = {"2x1-yield": {"mca": {"mpi_yield_when_idle": "1"}}, "1x2-passive": {"env": {"OMP_WAIT_POLICY": "PASSIVE"}}}


def run(dataset, name, spec, seed, args, out_dir):
    ranks, threads, batch, extra = spec
    slug = f"{name}-seed{seed}"
    report = os.path.join(out_dir, slug + ".json")
    meta_path = os.path.join(out_dir, slug + ".meta.json")
    monitor = os.path.join(out_dir, slug + ".mon")

    def command(partial):
        cmd = [FUNNEL, "train", "--data", dataset_json(dataset), "--out", os.path.join(out_dir, slug + ".funnel"),
               "--report", partial, "--set", f"threads={threads}", "--set", f"batch_size={batch}",
               "--set", f"epochs={args.epochs}", "--set", f"seed={seed}",
               # no drift probes: their row fetches would count in the per-step bytes
               "--set", "drift_interval=100000000"]
        for key, value in list(extra.items()) + [e.split("=", 1) for e in args.extra]:
            cmd += ["--set", f"{key}={value}"]
        if ranks > 1:
            mca = {"pml_monitoring_enable": "2", "pml_monitoring_enable_output": "3", "pml_monitoring_filename": monitor}
            mca.update(LAUNCH.get(name, {}).get("mca", {}))
            cmd = ["mpirun", "-np", str(ranks)] + [x for key, value in mca.items() for x in ("--mca", key, value)] + cmd
        cmd = ["env"] + [f"{k}={v}" for k, v in LAUNCH.get(name, {}).get("env", {}).items()] + cmd
        print(" ".join(cmd), file=sys.stderr, flush=True)
        return cmd

    if not os.path.exists(report):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before, start = os.getloadavg()[0], time.time()
        run_once(report, command, f"{dataset} {slug}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        meta = {"load_before": load_before, "load_after": os.getloadavg()[0], "wall_seconds": time.time() - start,
                "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
        json.dump(meta, open(meta_path, "w"), indent=2)
    result = json.load(open(report))
    result["meta"] = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    if ranks > 1 and os.path.exists(monitor + ".0.prof"):
        result["monitored"] = monitored_bytes(monitor + ".0.prof")
    return result


def monitored_bytes(path):
    """Rank 0's bytes by kind of collective on MPI_COMM_WORLD (coll monitoring: A2A = all-to-all-like: allreduce,
    allgather(v), alltoall(v); A2O = gathers; O2A = broadcasts), and the point-to-point total its collectives
    sent (pml monitoring, 'I' lines)."""
    out, in_world = {"internal_p2p": 0}, False
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        if fields[0] == "I":
            out["internal_p2p"] += int(fields[3].split()[0])
        elif fields[0] == "D":
            in_world = fields[1] == "MPI_COMM_WORLD"
        elif in_world and fields[0] in ("A2A", "A2O", "O2A"):
            out[fields[0]] = int(fields[2].split()[0])
    return out


# ---- the bytes model -------------------------------------------------------------------------------------------

def read_rows(spec, base):
    path = os.path.join(base, spec["path"])
    opener = gzip.open if path.endswith(".gz") else open
    delimiter = spec.get("delimiter", ",")
    with opener(path, "rt", encoding="latin-1") as f:
        if spec.get("header"):
            next(f)
        for line in f:
            yield line.rstrip("\n").split(delimiter)


def feature_values(feature, row):
    """The ids a feature takes in one row (what the trainer's vocabulary would map), or None for a dense one."""
    kind = feature.get("kind", "categorical")
    if kind == "dense":
        return None
    text = row[feature["column"]]
    if kind == "multi_categorical":
        return set(text.split(feature.get("separator", "|")))
    if feature.get("extract_year"):
        year = re.search(r"\((\d{4})\)\s*$", text)
        text = int(year.group(1)) if year else None
    elif "boundaries" in feature:
        text = float(text)
    if "boundaries" in feature and text is not None:
        return {sum(1 for edge in feature["boundaries"] if text >= edge)}
    if "prefix" in feature:
        text = text[:feature["prefix"]]
    return {text}


def side_tables(data, side, base):
    """Per sparse feature of a side: key -> set of ids; and the count of dense features."""
    spec = data[side]
    sparse = [f for f in spec["features"] if f.get("kind") != "dense"]
    dense = sum(1 for f in spec["features"] if f.get("kind") == "dense")
    values = {f["name"]: {} for f in sparse}
    for row in read_rows(spec, base):
        key = row[spec["key"]]
        for f in sparse:
            values[f["name"]][key] = feature_values(f, row)
    return values, len(sparse), dense


def expected_unique(frequencies, total, draws):
    """E[distinct ids among `draws` interactions drawn from the training data]: sum over ids of
    1 - (1 - p)^draws, with p the share of interactions that carry the id."""
    return sum(1.0 - (1.0 - c / total) ** draws for c in frequencies.values())


def bytes_model(dataset, batch, ranks, config):
    """Rank 0's bytes on the wire per optimiser step, by exchange, for `ranks` ranks of per-rank batch `batch`."""
    path = dataset_json(dataset)
    data = json.load(open(path))
    base = os.path.normpath(os.path.join(os.path.dirname(path), data.get("root", ".")))
    inter = data["interactions"]
    users, n_user_sparse, n_user_dense = side_tables(data, "users", base)
    items, n_item_sparse, n_item_dense = side_tables(data, "items", base)
    counts = {("users", name): collections.Counter() for name in users}
    counts.update({("items", name): collections.Counter() for name in items})
    total = 0
    for row in read_rows(inter, base):
        u, i = row[inter["user"]], row[inter["item"]]
        total += 1
        for name, table in users.items():
            for v in table.get(u, ()):
                counts[("users", name)][v] += 1
        for name, table in items.items():
            for v in table.get(i, ()):
                counts[("items", name)][v] += 1
    e, d, hidden = config["embedding_dim"], config["output_dim"], config["hidden"]
    remote = (ranks - 1) / ranks  # a row's owner is a hash of its id mod the world size

    def mlp(inputs):
        weights, width = 0, inputs
        for h in hidden + [d]:
            weights += width * h + h
            width = h
        return weights

    dense_floats = mlp(n_user_sparse * e + n_user_dense) + mlp(n_item_sparse * e + n_item_dense)
    widths = lambda inputs: [inputs] + hidden + [d]
    macs = lambda w: sum(w[i] * w[i + 1] for i in range(len(w) - 1))
    tower_macs = macs(widths(n_user_sparse * e + n_user_dense)) + macs(widths(n_item_sparse * e + n_item_dense))
    model = collections.OrderedDict()
    # Rows: per table, the batch's distinct ids (deduplicated per table), those owned elsewhere: 4 B per id asked,
    # 4e B per row served to the other ranks (as many as asked of us, by symmetry), 4e B per gradient row sent back;
    # and each MPI_Alltoallv is preceded by an MPI_Alltoall of the counts (4 B to each other rank), 3 per table.
    unique = {f"{side}.{name}": expected_unique(c, total, batch) for (side, name), c in counts.items()}
    rows = sum(unique.values()) * remote
    n_tables = len(counts)
    model["all-to-all: ids"] = 4 * rows
    model["all-to-all: rows out"] = 4 * e * rows
    model["all-to-all: row gradients back"] = 4 * e * rows
    model["all-to-all: counts"] = 3 * n_tables * 4 * (ranks - 1)
    # All-gathers (each preceded by an MPI_Allgather of the length, 4 B): the batch's item ids and its item
    # embeddings; with 2 ranks OpenMPI's tuned allgather(v) is the two-process exchange: each rank sends its block
    # once. log q is computed on every rank from the gathered ids: not sent.
    model["all-gather: item ids"] = (4 * batch + 4) * (ranks - 1)
    model["all-gather: item embeddings"] = (4 * d * batch + 4) * (ranks - 1)
    # All-reduces. At 2 ranks every algorithm of OpenMPI's tuned component (recursive doubling below ~10 KB,
    # ring / Rabenseifner above) sends n bytes per rank: recursive doubling swaps the whole vector once; ring and
    # Rabenseifner send n/2 in the reduce-scatter and n/2 in the all-gather. For P ranks, ring/Rabenseifner send
    # 2(P-1)/P n.
    factor = 1.0 if ranks == 2 else 2.0 * (ranks - 1) / ranks
    model["all-reduce: item-embedding gradients (global batch)"] = factor * 4 * d * batch * ranks
    model["all-reduce: dense tower gradients"] = factor * 4 * dense_floats
    model["all-reduce: loss"] = factor * 8
    return model, {"dense_floats": dense_floats, "rows_remote_per_step": rows, "tables": n_tables, "unique": unique,
                   "tower_macs": tower_macs, "table_rows": sum(len(c) for c in counts.values())}


# ---- the time-per-step model -----------------------------------------------------------------------------------

def calibrate(runs_b, runs_2b, batch, d, tower_macs):
    """The compute term from 1-process, 1-thread runs at batch b and 2b: t(k b) = F + k T + k^2 S, with F the
    per-step work that does not grow with the batch (Adam over every dense parameter and, with the default dense
    Adam, every table row), T the towers' work for b samples and S the in-batch softmax over b x b logits. Two
    runs cannot give three terms: S/T is taken from the multiply-adds (softmax 3 b^2 d, towers 3 b tower_macs,
    forward + two backward products each). The fastest run of each is used: on a shared machine interference
    only adds time."""
    t_b = min(r["train_seconds"] / r["steps"] for r in runs_b)
    t_2b = min(r["train_seconds"] / r["steps"] for r in runs_2b)
    ratio = batch * d / tower_macs
    towers = (t_2b - t_b) / (1 + 3 * ratio)
    return {"batch": batch, "t_b": t_b, "t_2b": t_2b, "towers": towers, "softmax": ratio * towers,
            "fixed": t_b - towers * (1 + ratio), "softmax_over_towers": ratio}


def comm_seconds(n, b, d, e, tables, rows, dense_floats, bandwidth, latency):
    """Seconds per step a rank spends in the exchanges with n ranks (alpha-beta model, no overlap with compute).
    rows: the distinct rows one rank's batch touches per step over all tables (at most b per table)."""
    if n == 1:
        return 0.0
    remote = (n - 1) / n
    # all-to-all, 3 per table (ids, rows, gradients), each after an MPI_Alltoall of the counts; OpenMPI's
    # alltoallv posts every send at once: one latency plus a per-message overhead (1 us) for each peer.
    a2a = 3 * tables * 2 * (latency + (n - 1) * 1e-6) + rows * remote * (4 + 8 * e) / bandwidth
    # all-gather of the ids and the item embeddings (and their lengths): ring, n-1 rounds, receives (n-1) b (4 + 4d).
    ag = 4 * (n - 1) * latency + (n - 1) * b * (4 + 4 * d) / bandwidth
    # all-reduce of the global batch's item-embedding gradients (n b d floats), the dense gradients and the loss:
    # Rabenseifner (reduce-scatter + all-gather), 2 log2 n rounds each, 2 (n-1)/n of the bytes.
    rounds = 2 * math.ceil(math.log2(n))
    ar = 3 * rounds * latency + 2 * remote * 4 * (n * b * d + dense_floats) / bandwidth
    return a2a + ag + ar


def scaling_table(calibration, fixed, b, d, e, tables, rows, dense_floats, network, sizes, scale=1, columns_cap=None):
    """Rows (N, compute s, communication s, step s, samples/s, efficiency) for N nodes of one rank each, per-rank
    batch b: compute = fixed + towers + softmax over b x (N b) logits (global negatives: N times the b x b softmax)."""
    out = []
    base = None
    for n in sizes:
        # per-rank batch scale x the calibrated b: towers grow with it, the softmax with its square
        # (columns_cap: a variant that scores each user against at most that many of the gathered items)
        columns = n if columns_cap is None else min(n, columns_cap / b)
        compute = fixed + calibration["towers"] * scale + calibration["softmax"] * scale * scale * columns
        comm = comm_seconds(n, b, d, e, tables, rows, dense_floats, network["bandwidth"], network["latency"])
        step = compute + comm
        rate = n * b / step
        base = base or rate
        out.append((n, compute, comm, step, rate, rate / (n * base)))
    return out


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    global FUNNEL
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["ml-1m", "ml-100k", "gen10m"], default="ml-1m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128, help="b: the per-rank batch of the 2-rank runs")
    parser.add_argument("--configs", nargs="+", default=["2x1", "1x2", "1x2-b", "1x2-cbns"])
    parser.add_argument("--extra", nargs="*", default=[], help="config overrides for every run, KEY=VALUE")
    parser.add_argument("--funnel", default=os.path.join(ROOT, "build", "release", "train", "funnel"))
    parser.add_argument("--model-only", action="store_true", help="print the bytes model and the scaling table only")
    args = parser.parse_args()
    FUNNEL = args.funnel
    os.environ.update(MPI_ENV)
    out_dir = os.path.join(OUT, args.dataset + "".join("-" + e.replace("=", "") for e in args.extra))
    os.makedirs(out_dir, exist_ok=True)
    specs = configurations(args.batch)
    results = collections.defaultdict(list)
    if not args.model_only:
        for seed in args.seeds:  # interleaved: every configuration once per seed
            for name in args.configs:
                results[name].append(run(args.dataset, name, specs[name], seed, args, out_dir))
        print_runs(results)
    model, facts = print_bytes(args, results)
    if "1x1-b" in results and "1x1-2b" in results:
        print_scaling(args, results, facts)


def print_runs(results):
    print("| run | seeds | samples/s (median) | samples per CPU-second | load before/after (median) | test Recall@50 | test NDCG@10 | test Recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        sps = [r["samples_per_second"] for r in runs]
        per_cpu = [r["train_samples"] / r["meta"]["cpu_seconds"] for r in runs if r["meta"].get("cpu_seconds")]
        loads = [(r["meta"].get("load_before", float("nan")), r["meta"].get("load_after", float("nan"))) for r in runs]
        metric = lambda key: [r["test"][key] for r in runs]
        cell = lambda values: f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")
        print(f"| {name} | {len(runs)} | {median(sps):.0f} ({', '.join(f'{s:.0f}' for s in sps)}) | {median(per_cpu):.0f} | "
              f"{median([l[0] for l in loads]):.1f}/{median([l[1] for l in loads]):.1f} | {cell(metric('recall@50'))} | "
              f"{cell(metric('ndcg@10'))} | {cell(metric('recall@10'))} |")
    if "2x1" in results and "1x2" in results:
        ratio = median([r["samples_per_second"] for r in results["2x1"]]) / median([r["samples_per_second"] for r in results["1x2"]])
        print(f"\n2 ranks x 1 thread / 1 process x 2 threads, median samples/s: {ratio:.2f}")


def print_bytes(args, results):
    spec_config = {"embedding_dim": 16, "output_dim": 32, "hidden": [64]}
    two = results.get("2x1", [])
    if two:
        spec_config = {k: two[0]["config"][k] for k in spec_config}
    model, facts = bytes_model(args.dataset, args.batch, 2, spec_config)
    print(f"\nBytes rank 0 sends per step, 2 ranks, per-rank batch {args.batch} ({facts['tables']} tables, "
          f"{facts['rows_remote_per_step']:.0f} remote rows per step expected, {facts['dense_floats']} dense floats):")
    for key, value in model.items():
        print(f"  {key:55s} {value:12.0f}")
    total = sum(model.values())
    print(f"  {'model total':55s} {total:12.0f}")
    for r in two:
        steps = r["steps"]
        mon = r.get("monitored", {})
        row_model = sum(v for k, v in model.items() if k.startswith("all-to-all") and "counts" not in k)
        print(f"  seed {r['config']['seed']}: measured A2A {mon.get('A2A', 0) / steps:.0f} B/step ({100 * (mon.get('A2A', 0) / steps / total - 1):+.1f}% vs model); "
              f"trainer's row exchange {r['exchange_bytes_per_step']:.0f} (model {row_model:.0f}, {100 * (r['exchange_bytes_per_step'] / row_model - 1):+.1f}%); "
              f"trainer's dense all-reduce payload {r['allreduce_bytes_per_step']:.0f} (model {4 * facts['dense_floats']})")
    return model, facts


def print_scaling(args, results, facts):
    b, d, e = args.batch, 32, 16
    cal = calibrate(results["1x1-b"], results["1x1-2b"], b, d, facts["tower_macs"])
    dense, table_floats = facts["dense_floats"], facts["table_rows"] * e
    print(f"\nCompute calibration (1 process, 1 thread, fastest run): t(b={b}) {1e3 * cal['t_b']:.3f} ms/step, t(2b) "
          f"{1e3 * cal['t_2b']:.3f} ms/step; S/T = {cal['softmax_over_towers']:.3f} from the multiply-adds -> fixed F "
          f"{1e3 * cal['fixed']:.3f} ms, towers T {1e3 * cal['towers']:.3f} ms, b x b softmax S {1e3 * cal['softmax']:.3f} ms")
    # Check at 2 ranks on this machine: shared memory, assumed ~1 us latency and ~5 GB/s (vader BTL); each rank's
    # dense Adam covers its half of the tables.
    local = {"bandwidth": 5e9, "latency": 1e-6}
    fixed_2 = cal["fixed"] * (dense + table_floats / 2) / (dense + table_floats)
    rows_here = sum(facts["unique"].values())
    predicted = scaling_table(cal, fixed_2, b, d, e, facts["tables"], rows_here, dense, local, [2])[0][3]
    measured = [r["train_seconds"] / r["steps"] for r in results.get("2x1", []) + results.get("2x1-yield", [])]
    print(f"2 ranks here: predicted {1e3 * predicted:.3f} ms/step; measured {', '.join(f'{1e3 * m:.2f}' for m in measured)} ms/step "
          f"(the 2x1 and 2x1-yield runs)")
    # The cluster: two 100M-row id tables (each batch row distinct: b rows each) + this dataset's small tables,
    # a sparse optimiser (touched rows only): F shrinks to the dense parameters and the touched rows.
    small = sum(v for k, v in facts["unique"].items() if not k.endswith("_id"))
    net = {"bandwidth": 25e9 / 8, "latency": 5e-6}
    for scale in (1, 8):
        batch = scale * b
        rows_cluster = 2 * batch + small
        fixed_cluster = cal["fixed"] * (dense + rows_cluster * e) / (dense + table_floats)
        print(f"\nScaling on 25 Gb/s, 5 us latency, per-rank batch {batch}, {facts['tables']} tables (two of 100M rows), "
              f"{rows_cluster:.0f} distinct rows per rank and step, {dense} dense floats, F = {1e3 * fixed_cluster:.3f} ms:")
        print("| N | compute ms | communication ms | step ms | samples/s | efficiency | step ms, negatives capped at 2048 | efficiency |")
        print("|---|---|---|---|---|---|---|---|")
        sizes = [1, 2, 4, 8, 16, 32, 64]
        full = scaling_table(cal, fixed_cluster, batch, d, e, facts["tables"], rows_cluster, dense, net, sizes, scale)
        capped = scaling_table(cal, fixed_cluster, batch, d, e, facts["tables"], rows_cluster, dense, net, sizes, scale, 2048)
        for (n, compute, comm, step, rate, eff), (_, _, _, step_c, _, eff_c) in zip(full, capped):
            print(f"| {n} | {1e3 * compute:.3f} | {1e3 * comm:.3f} | {1e3 * step:.3f} | {rate:.0f} | {100 * eff:.0f}% | "
                  f"{1e3 * step_c:.3f} | {100 * eff_c:.0f}% |")


FUNNEL = os.path.join(ROOT, "build", "release", "train", "funnel")

if __name__ == "__main__":
    main()
