#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Change N files of a bench tree, deterministically by --seed.

Picks N distinct paths from --list (the small files gentree.py wrote):
90% are modified (a line appended, so the size changes), 5% deleted, and
5% get a new sibling file (added). The same --seed on the same tree state
makes the same change, so every tool in bench/run.sh is timed on the same
edit. A path that an earlier mutation deleted is re-created (still one
change); deleting a missing path adds a file instead.
"""
import argparse
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--list", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    a = ap.parse_args()
    with open(a.list) as f:
        paths = [l.rstrip("\n") for l in f if l.strip()]
    rng = random.Random(a.seed)
    pick = rng.sample(paths, min(a.count, len(paths)))
    n_del = n_add = max(1, a.count // 20) if a.count >= 20 else 0
    for i, rel in enumerate(pick):
        path = os.path.join(a.root, rel)
        if i < n_del and os.path.lexists(path):
            os.unlink(path)
            continue
        if i < n_del + n_add:
            path = os.path.join(os.path.dirname(path), "added-%d-%d.js" % (a.seed, i))
            with open(path, "w") as f:
                f.write("export const added%d = %d;\n" % (i, a.seed))
            continue
        with open(path, "a") as f:
            f.write("\n// edited by bench seed %d change %d\n" % (a.seed, i))


if __name__ == "__main__":
    main()
