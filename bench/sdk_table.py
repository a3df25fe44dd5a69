#!/usr/bin/env python3
"""Markdown tables of the SDK runtime benchmarks from funnel_bench's JSON (bench/run_sdk_bench.sh).

    python3 bench/sdk_table.py build/bench/sdk_runtime.json [more runs' JSON ...]

Every figure is the median over all repetitions in all the files given (the times and, separately, the rates
and counters); the last table gives the spread (min-max over those repetitions) of the figures the targets
use. GB are 10^9 bytes. Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict


def load(paths):
    samples = defaultdict(list)
    contexts = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        contexts.append(doc["context"])
        for b in doc["benchmarks"]:
            if b.get("run_type") == "aggregate" or b.get("error_occurred"):
                continue
            samples[b.get("run_name", b["name"])].append(b)
    runs = {}
    for name, bs in samples.items():
        entry = dict(bs[0])
        for key, value in bs[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and all(key in b for b in bs):
                entry[key] = statistics.median(b[key] for b in bs)
        entry["samples"] = bs
        runs[name] = entry
    return contexts, runs


def us(b):
    """Wall time per call in microseconds."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]]
    return b["real_time"] * scale


def fmt_time(micros):
    if micros >= 10_000:
        return f"{micros / 1000:,.1f} ms"
    if micros >= 1000:
        return f"{micros / 1000:,.2f} ms"
    if micros >= 100:
        return f"{micros:,.0f} µs"
    return f"{micros:,.1f} µs"


def gbs(b):
    return b["bytes_per_second"] / 1e9


# OpenBLAS kernel sets (OPENBLAS_CORETYPE) and their instruction sets, in the order the table lists them.
CORES = {"SkylakeX": "AVX-512", "Cooperlake": "AVX-512", "Haswell": "AVX2+FMA", "Prescott": "SSE3",
         "none": "not OpenBLAS"}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    contexts, runs = load(sys.argv[1:])
    get = runs.get
    out = []
    p = out.append

    for context in sorted(contexts, key=lambda c: c.get("date", "")):
        p(f"- run {context.get('date', '?')} on {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, "
          f"load average before it {', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}")
    p(f"Medians of {max((len(b['samples']) for b in runs.values()), default=0)} repetitions in all.")
    p("")

    # FAISS's names carry OpenBLAS's kernel set: BM_FaissFlatIP/openblas:CORE/rows:N/batch:B/real_time.
    cores = sorted({name.split("/")[1].split(":", 1)[1] for name in runs if name.startswith("BM_FaissFlatIP/openblas:")},
                   key=lambda c: list(CORES).index(c) if c in CORES else len(CORES))

    def faiss(rows, batch, core=None):
        for c in ([core] if core else cores):
            b = get(f"BM_FaissFlatIP/openblas:{c}/rows:{rows}/batch:{batch}/real_time")
            if b:
                return b
        return None

    def bandwidth(mib, threads, prefetch):
        return get(f"BM_MemoryBandwidth/MiB:{mib}/threads:{threads}/prefetch:{prefetch}/real_time")

    plain1, plain2 = bandwidth(1024, 1, 0), bandwidth(1024, 2, 0)
    fetch1, fetch2 = bandwidth(1024, 1, 1), bandwidth(1024, 2, 1)
    # The scans are held against the higher of the two 2-thread figures.
    bw2_gbs = max((gbs(b) for b in (plain2, fetch2) if b), default=None)
    if plain1 and plain2:
        p("| memory read bandwidth (sum with 8 accumulators) | 1 thread | 2 threads |")
        p("| --- | ---: | ---: |")
        p(f"| 1 GiB buffer (DRAM: 3.4× the L3), GB/s | {gbs(plain1):.1f} | {gbs(plain2):.1f} |")
        if fetch1 and fetch2:
            p(f"| the same with software prefetch 4 KB ahead (as the scans), GB/s | {gbs(fetch1):.1f} | {gbs(fetch2):.1f} |")
        small1, small2 = bandwidth(256, 1, 0), bandwidth(256, 2, 0)
        if small1 and small2:
            p(f"| 256 MiB of it (the 1M × 64 f32 catalogue's size), GB/s | {gbs(small1):.1f} | {gbs(small2):.1f} |")
        p("")

    loads = [(label, get(f"BM_LoadFile/{label}/real_time")) for label in ("10MB", "500MB", "500MB_wide")]
    if any(b for _, b in loads):
        p("| model load (`Model::load_file`: mmap + verify, warm page cache) | file bytes | items × dims | tensor bytes | time | mapped after load |")
        p("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, b in loads:
            if not b:
                continue
            p(f"| {label} | {int(b['file_bytes']):,} | {int(b['items']):,} × {int(b['dim'])} | {int(b['tensor_bytes']):,} | "
              f"{fmt_time(us(b))} | {b['mapped_bytes'] / 1e6:.1f} MB |")
        verify = get("BM_VerifyKeys/real_time")
        if verify:
            p(f"| `Model::verify` on the 500MB file (on demand, e.g. `funnel inspect`, the CLI before it answers: every checksum, "
              f"every key table sorted and distinct) | {int(verify.get('file_bytes', 0)):,} | "
              f"{int(verify['items']):,} items | | {fmt_time(us(verify))} | |")
        p("")

    p("| top-K, k = 100, 64 dims | rows | 1 query, 1 thread | 1 query, 2 threads | GB/s on 2 threads (share of 2-thread bandwidth) | batch of 64 on 2 threads, per query |")
    p("| --- | ---: | ---: | ---: | ---: | ---: |")
    for rows, rows_label in ((100_000, "100K"), (1_000_000, "1M")):
        for key, label in (("f32", "f32"), ("f16", "f16"), ("int8", "int8"), ("int8_exact", "int8 + exact re-score")):
            one = get(f"BM_Search/{key}/rows:{rows}/threads:1/real_time")
            two = get(f"BM_Search/{key}/rows:{rows}/threads:2/real_time")
            batch = get(f"BM_SearchBatch/{key}/rows:{rows}/threads:2/real_time")
            if not (one or two or batch):
                continue
            share = f" ({gbs(two) / bw2_gbs:.0%})" if two and bw2_gbs else ""
            p(f"| Funnel {label} | {rows_label} | {fmt_time(us(one)) if one else '—'} | {fmt_time(us(two)) if two else '—'} | "
              f"{f'{gbs(two):.1f}{share}' if two else '—'} | {fmt_time(us(batch) / 64) if batch else '—'} |")
        single = faiss(rows, 1)
        if single:
            p(f"| FAISS IndexFlatIP f32 (Debian's build: SSE; one query runs on 1 thread) | {rows_label} | "
              f"{fmt_time(us(single))} | — | {gbs(single):.1f} (1 thread) | — |")
        for core in cores:
            fbatch = faiss(rows, 64, core)
            if fbatch:
                p(f"| FAISS IndexFlatIP f32 + OpenBLAS, {core} kernels ({CORES.get(core, '?')}), 2 OpenMP threads | {rows_label} | "
                  f"— | — | — | {fmt_time(us(fbatch) / 64)} |")
    p("")

    user = get("BM_UserEmbedding")
    prerank = get("BM_PreRank")
    rank_can, rank_dnn = get("BM_Rank/can_100"), get("BM_Rank/dnn_100")
    cascade = get("BM_Recommend")
    p("| stage | time |")
    p("| --- | ---: |")
    if user:
        p(f"| user tower (`Model::user_embedding`, 4 features → 64 → {int(user.get('dim', 64))}) | {fmt_time(us(user))} |")
    if prerank:
        p(f"| pre-ranking of 1,000 candidates, 50 behaviours (`Model::prerank`; a DNN student, one 64-unit layer) | {fmt_time(us(prerank))} |")
    else:
        p("| pre-ranking of 1,000 candidates | not measured |")
    if rank_can:
        p(f"| ranking of 100 candidates, 50 behaviours, CAN (`Model::rank`) | {fmt_time(us(rank_can))} |")
    if rank_dnn:
        p(f"| ranking of 100 candidates, 50 behaviours, DNN of the same width | {fmt_time(us(rank_dnn))} |")
    if cascade:
        stages = [("retrieval", "retrieval"), ("pre_ranking", "pre-ranking"), ("ranking", "ranking")]
        parts = ", ".join(f"{label} {cascade[key + '_ms']:.2f} ms" for key, label in stages if key + "_ms" in cascade)
        p(f"| whole cascade (`Model::recommend`, 1 thread): retrieve {int(cascade.get('pre_ranking_scored', 0)):,} of "
          f"{int(cascade['items']):,} (f32), pre-rank them to {int(cascade.get('ranking_scored', 0)):,}, rank those (CAN), keep 10 | "
          f"{fmt_time(us(cascade))} ({parts}) |")
    p("")

    # The targets.
    p("Targets:")
    big = get("BM_LoadFile/500MB/real_time")
    wide = get("BM_LoadFile/500MB_wide/real_time")
    if big:
        p(f"- load < 5 ms for 500 MB: {fmt_time(us(big))} for {int(big['items']):,} items × 64 dims "
          f"({'met' if us(big) < 5000 else 'missed'})" +
          (f"; {fmt_time(us(wide))} for {int(wide['items']):,} items × {int(wide['dim'])} dims "
           f"({'met' if us(wide) < 5000 else 'missed'})" if wide else ""))
    f32_two = get("BM_Search/f32/rows:1000000/threads:2/real_time")
    if f32_two and bw2_gbs:
        share = gbs(f32_two) / bw2_gbs
        p(f"- single-query f32 scan on 2 threads ≥ 80% of 2-thread read bandwidth, 1M × 64: {gbs(f32_two):.1f} of "
          f"{bw2_gbs:.1f} GB/s (the higher 2-thread bandwidth) = {share:.0%} ({'met' if share >= 0.8 else 'missed'})")
    ours = get("BM_SearchBatch/f32/rows:1000000/threads:2/real_time")
    for core in cores:
        theirs = faiss(1_000_000, 64, core)
        if ours and theirs:
            ratio = us(ours) / us(theirs)
            p(f"- batched (64) no slower per query than FAISS + OpenBLAS ({core} kernels, {CORES.get(core, '?')}) at 1M × 64: "
              f"{fmt_time(us(ours) / 64)} against {fmt_time(us(theirs) / 64)} ({ratio:.2f}× FAISS's time; "
              f"{'met' if ratio <= 1 else 'missed'})")
    for threads in (1, 2):
        f32 = get(f"BM_Search/f32/rows:1000000/threads:{threads}/real_time")
        i8 = get(f"BM_Search/int8/rows:1000000/threads:{threads}/real_time")
        i8x = get(f"BM_Search/int8_exact/rows:1000000/threads:{threads}/real_time")
        if f32 and i8:
            text = f"- int8 ≥ 3× faster than f32, 1M, one query on {threads} thread{'s' if threads > 1 else ''}: {us(f32) / us(i8):.2f}×"
            if i8x:
                text += f" (with exact re-scoring {us(f32) / us(i8x):.2f}×)"
            p(text + f" ({'met' if us(f32) / us(i8) >= 3 else 'missed'})")
    f32b, i8b = get("BM_SearchBatch/f32/rows:1000000/threads:2/real_time"), get("BM_SearchBatch/int8/rows:1000000/threads:2/real_time")
    if f32b and i8b:
        p(f"- int8 ≥ 3× faster than f32, 1M, batches of 64 on 2 threads: {us(f32b) / us(i8b):.2f}× "
          f"({'met' if us(f32b) / us(i8b) >= 3 else 'missed'})")
    p("")

    # The spread behind the medians the targets use.
    spread = [("memory read bandwidth, 1 GiB, 2 threads (GB/s)", "BM_MemoryBandwidth/MiB:1024/threads:2/prefetch:0/real_time", "gbs"),
              ("the same with prefetch (GB/s)", "BM_MemoryBandwidth/MiB:1024/threads:2/prefetch:1/real_time", "gbs"),
              ("load, 500 MB file of 1,375,000 items", "BM_LoadFile/500MB/real_time", "time"),
              ("f32, 1M, 1 query, 2 threads (GB/s)", "BM_Search/f32/rows:1000000/threads:2/real_time", "gbs"),
              ("f32, 1M, 1 query, 1 thread", "BM_Search/f32/rows:1000000/threads:1/real_time", "time"),
              ("int8, 1M, 1 query, 1 thread", "BM_Search/int8/rows:1000000/threads:1/real_time", "time"),
              ("int8, 1M, 1 query, 2 threads", "BM_Search/int8/rows:1000000/threads:2/real_time", "time"),
              ("f32, 1M, batch of 64, per query", "BM_SearchBatch/f32/rows:1000000/threads:2/real_time", "batch")]
    spread += [(f"FAISS + OpenBLAS {core}, 1M, batch of 64, per query", f"BM_FaissFlatIP/openblas:{core}/rows:1000000/batch:64/real_time",
                "batch") for core in cores]
    rows = []
    for label, name, kind in spread:
        b = get(name)
        if not b:
            continue
        if kind == "gbs":
            values = sorted(s["bytes_per_second"] / 1e9 for s in b["samples"])
            text = f"{statistics.median(values):.1f} | {values[0]:.1f} – {values[-1]:.1f}"
        else:
            divide = 64 if kind == "batch" else 1
            values = sorted(us(s) / divide for s in b["samples"])
            text = f"{fmt_time(statistics.median(values))} | {fmt_time(values[0])} – {fmt_time(values[-1])}"
        rows.append(f"| {label} | {len(values)} | {text} |")
    if rows:
        p("| spread over the repetitions | n | median | min – max |")
        p("| --- | ---: | ---: | ---: |")
        out.extend(rows)
    print("\n".join(out))


if __name__ == "__main__":
    main()
