#!/usr/bin/python3
"""Writes the PyTorch reference's exact CTR instances for Amazon Beauty (../shared/peers/ctr_can.py:
its negatives, drawn with numpy from --data-seed) as DIEN-format files, so that Funnel can train and
evaluate on the very same instances:

    bench/reference_instances_to_dien.py --out build/study/reference-beauty [--neg-ratio 1] [--data-seed 0]
    build/release/train/funnel train-ranker --data build/study/reference-beauty/dataset.json ...

Rows: label, uid, mid, cat, mid_history, cat_history (histories joined by \\x02); cat is the reference's
category, the item's first attribute id. Needs numpy (python3-numpy) and the data in ../shared/data.
The files are research data: they stay under build/, never in the repository.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "..", "shared", "peers")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--neg-ratio", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, PEERS)
    import ctr_can  # the reference's own loader, so the instances are its instances

    data = ctr_can.load_beauty(os.path.join(PEERS, "..", "data", "amazon-beauty-s3rec"), args.neg_ratio, args.data_seed)
    hist, cat_of = data["hist"], data["cat_of"]
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "val", "test"):
        d = data[split]
        with open(os.path.join(args.out, split + ".tsv"), "w") as f:
            for group, user, target, label in zip(d["group"], d["user"], d["target"], d["label"]):
                h = [int(x) for x in hist[group] if x > 0]
                f.write(f"{int(label)}\tu{user}\t{target}\t{cat_of[target]}\t" + "\x02".join(map(str, h)) + "\t" +
                        "\x02".join(str(cat_of[x]) for x in h) + "\n")
    with open(os.path.join(args.out, "dataset.json"), "w") as f:
        json.dump({"name": f"amazon-beauty, the reference's instances (data seed {args.data_seed})", "root": ".", "format": "dien",
                   "train": "train.tsv", "validation": "val.tsv", "test": "test.tsv"}, f)
        f.write("\n")
    print(f"wrote {args.out}/dataset.json", file=sys.stderr)


if __name__ == "__main__":
    main()
