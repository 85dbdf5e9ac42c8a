#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate a deterministic tree shaped like a source checkout plus a
node_modules directory, for bench/run.sh.

At --scale 1: about 80k files and 800 MB. Small files follow a log-normal
size distribution with a median of about 0.6 KB (most of a real checkout);
a few dozen medium files (bundles, source maps, fixtures) of 1-8 MB; three
large files over 100 MB (a text log, a CSV export, and an incompressible
archive). Contents are pseudo-random but compressible code-like text built
from a fixed vocabulary, so zstd/zlib see realistic ratios; about 2% of the
small files are binary (incompressible) and about 4% of node_modules files
are exact duplicates of another package's file, as npm trees are.

Everything depends only on --seed and --scale: two runs give byte-identical
trees with identical mtimes (all set to a fixed date in 2024, so no tool
sees "racily clean" entries).

Also writes --list FILE: the small regular files, one path per line
(relative to the root), from which bench/mutate.py picks files to change.
"""
import argparse
import os
import random
import sys

BASE_MTIME = 1704067200  # 2024-01-01T00:00:00Z

KEYWORDS = (
    "const let var function return if else for while break continue switch case "
    "default import export from class extends new this super try catch finally "
    "throw typeof instanceof null undefined true false async await yield static "
    "int char void struct unsigned size_t uint64_t static inline #include #define "
    "self def elif pass lambda None True False module require exports"
).split()
PUNCT = ["(", ")", "{", "}", ";", ",", ".", "=", "==", "=>", "+", "-", "*",
         "[", "]", "<", ">", "&&", "||", ":", "!"]


def make_vocab(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < n:
        k = max(2, min(14, int(rng.lognormvariate(1.7, 0.45))))
        w = "".join(rng.choice(letters) for _ in range(k))
        if rng.random() < 0.3:
            w = w + rng.choice(["Id", "Name", "List", "Map", "Count", "Fn", "_t", "Ptr"])
        words.add(w)
    return sorted(words)


def make_corpus(rng, size):
    """About `size` bytes of code-like lines (Zipf-ish word frequencies)."""
    vocab = make_vocab(rng, 6000)
    weights = [1.0 / (i + 8) for i in range(len(vocab))]
    tokens = rng.choices(vocab, weights=weights, k=size // 5)
    out = []
    i = 0
    n = len(tokens)
    total = 0
    while total < size and i < n:
        indent = "    " * rng.randint(0, 4)
        k = rng.randint(2, 12)
        parts = []
        for t in tokens[i:i + k]:
            r = rng.random()
            if r < 0.18:
                parts.append(rng.choice(KEYWORDS))
            if r > 0.8:
                parts.append(rng.choice(PUNCT))
            parts.append(t)
        i += k
        if rng.random() < 0.07:
            line = indent + "// " + " ".join(parts) + "\n"
        else:
            line = indent + " ".join(parts) + rng.choice([";", " {", "", ",", ")"]) + "\n"
        out.append(line)
        total += len(line)
    data = "".join(out).encode()
    while len(data) < size:
        data += data
    return data[:size]


class Gen:
    def __init__(self, root, seed, scale):
        self.root = root
        self.rng = random.Random(seed)
        self.scale = scale
        self.corpus = make_corpus(random.Random(seed * 7 + 1), 8 << 20)
        self.small = []  # relative paths of small regular files
        self.dirs = []
        self.nfiles = 0
        self.nbytes = 0
        self.content_pool = []  # contents kept for duplicates
        self.seen = set()

    def text(self, size, tag):
        """Compressible text: a unique first line, then corpus slices."""
        head = ("/* %s */\n" % tag).encode()
        if size <= len(head):
            return head[:size]
        need = size - len(head)
        parts = [head]
        cl = len(self.corpus)
        while need > 0:
            piece = min(need, self.rng.randint(2048, 65536))
            off = self.rng.randrange(0, cl - piece)
            parts.append(self.corpus[off:off + piece])
            need -= piece
        return b"".join(parts)

    def word(self):
        off = self.rng.randrange(0, len(self.corpus) - 16)
        return self.corpus[off:off + 12].decode("ascii", "replace").replace(
            "\n", " ").replace(",", " ")

    def write(self, rel, data, mode=0o644, small=True):
        if rel in self.seen:
            return
        self.seen.add(rel)
        path = os.path.join(self.root, rel)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            mv = memoryview(data)
            while mv:
                n = os.write(fd, mv)
                mv = mv[n:]
        finally:
            os.close(fd)
        os.chmod(path, mode)
        t = BASE_MTIME + self.rng.randrange(0, 86400 * 200)
        os.utime(path, ns=(t * 10**9, t * 10**9 + self.rng.randrange(0, 10**9)))
        self.nfiles += 1
        self.nbytes += len(data)
        if small and len(data) < 65536:
            self.small.append(rel)

    def big_write(self, rel, size, kind):
        """Large files are streamed in 4 MiB pieces to keep memory flat."""
        path = os.path.join(self.root, rel)
        with open(path, "wb") as f:
            left = size
            line = 0
            while left > 0:
                n = min(left, 4 << 20)
                if kind == "binary":
                    buf = self.rng.randbytes(n)
                elif kind == "csv":
                    rows = []
                    got = 0
                    while got < n:
                        line += 1
                        r = "%d,%s,%d,%.4f,%s\n" % (
                            line, self.word(),
                            self.rng.randrange(0, 1 << 30), self.rng.random() * 1000,
                            self.rng.choice(["ok", "fail", "skip", "retry"]))
                        rows.append(r)
                        got += len(r)
                    buf = "".join(rows).encode()[:n]
                else:
                    buf = self.text(n, "%s part %d" % (rel, size - left))
                f.write(buf)
                left -= n
        t = BASE_MTIME + 86400 * 100
        os.utime(path, ns=(t * 10**9, t * 10**9))
        self.nfiles += 1
        self.nbytes += size

    def mkdir(self, rel):
        os.makedirs(os.path.join(self.root, rel), exist_ok=True)
        self.dirs.append(rel)

    def small_size(self):
        # Log-normal, median ~600 B; a long tail capped at 512 KiB.
        return max(0, min(512 << 10, int(self.rng.lognormvariate(6.4, 1.35))))

    def small_file(self, rel, mode=0o644):
        if self.rng.random() < 0.02:
            data = self.rng.randbytes(self.small_size())
        elif self.content_pool and rel.startswith("node_modules") and self.rng.random() < 0.04:
            data = self.rng.choice(self.content_pool)
        else:
            data = self.text(self.small_size(), rel)
            if len(self.content_pool) < 2000 and self.rng.random() < 0.05:
                self.content_pool.append(data)
        self.write(rel, data, mode)

    def n(self, x):
        return max(1, int(round(x * self.scale)))


def name(rng, vocab_rng_words):
    return rng.choice(vocab_rng_words)


def gen_source(g, words, nfiles):
    """A source checkout: nested packages of modules, tests and docs."""
    rng = g.rng
    exts = [".c", ".h", ".js", ".ts", ".py", ".go", ".rs", ".md", ".json", ".txt"]
    tops = ["src", "lib", "tests", "docs", "tools", "third_party", "scripts", "examples"]
    made = 0
    for t in tops:
        g.mkdir(t)
    g.write("README.md", g.text(3000, "README"))
    g.write("Makefile", g.text(1200, "Makefile"))
    g.write(".gitignore", b"*.o\n/build/\n")
    while made < nfiles:
        depth = rng.randint(1, 5)
        parts = [rng.choice(tops)] + [rng.choice(words) for _ in range(depth)]
        d = "/".join(parts)
        g.mkdir(d)
        for _ in range(rng.randint(3, 30)):
            if made >= nfiles:
                break
            fn = "%s_%d%s" % (rng.choice(words), rng.randrange(1000), rng.choice(exts))
            mode = 0o755 if rng.random() < 0.01 else 0o644
            g.small_file(d + "/" + fn, mode)
            made += 1


def gen_node_modules(g, words, nfiles):
    rng = g.rng
    made = 0
    g.mkdir("node_modules/.bin")
    pk = 0
    while made < nfiles:
        pk += 1
        if rng.random() < 0.15:
            pkg = "node_modules/@%s/%s-%d" % (rng.choice(words), rng.choice(words), pk)
        else:
            pkg = "node_modules/%s-%d" % (rng.choice(words), pk)
        g.mkdir(pkg)
        g.write(pkg + "/package.json", g.text(rng.randint(400, 2500), pkg + " package"))
        g.write(pkg + "/README.md", g.text(g.small_size() * 3, pkg + " readme"))
        g.write(pkg + "/LICENSE", g.text(1070, "MIT license"))
        made += 3
        subdirs = ["lib", "dist", "src", "types", "lib/" + rng.choice(words), "esm", "cjs"]
        for sd in rng.sample(subdirs, rng.randint(1, 4)):
            g.mkdir(pkg + "/" + sd)
            for _ in range(rng.randint(1, 25)):
                if made >= nfiles:
                    break
                ext = rng.choice([".js", ".js", ".js", ".d.ts", ".mjs", ".cjs", ".map", ".json"])
                g.small_file("%s/%s/%s%s" % (pkg, sd, rng.choice(words), ext))
                made += 1
        if rng.random() < 0.1:
            g.mkdir(pkg + "/bin")
            g.write(pkg + "/bin/cli.js", g.text(800, pkg + " cli"), 0o755)
            made += 1
            link = "node_modules/.bin/%s-%d" % (rng.choice(words), pk)
            os.symlink("../" + pkg[len("node_modules/"):] + "/bin/cli.js",
                       os.path.join(g.root, link))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--list", required=True, help="write the small files' paths here")
    a = ap.parse_args()
    if os.path.exists(a.root) and os.listdir(a.root):
        sys.exit("gentree: %s exists and is not empty" % a.root)
    os.makedirs(a.root, exist_ok=True)
    g = Gen(a.root, a.seed, a.scale)
    words = make_vocab(random.Random(a.seed * 13 + 5), 1500)

    gen_source(g, words, g.n(24000))
    gen_node_modules(g, words, g.n(56000))

    # Medium files: bundles, source maps, fixtures (1-8 MB).
    g.mkdir("dist")
    g.mkdir("tests/fixtures")
    for i in range(g.n(35)):
        size = int(g.rng.uniform(1, 8) * (1 << 20))
        d = "dist" if i % 2 else "tests/fixtures"
        g.write("%s/bundle-%d.js" % (d, i), g.text(size, "bundle %d" % i), small=False)

    # Large files over 100 MB at scale 1 (scaled down with the tree).
    g.mkdir("data")
    for rel, mb, kind in (("data/server.log", 180, "text"), ("data/export.csv", 150, "csv"),
                          ("data/assets.tar", 130, "binary")):
        g.big_write(rel, int(mb * a.scale * (1 << 20)), kind)

    # Directory mtimes last, deepest first, so writing children does not undo them.
    for d in sorted(set(g.dirs), key=lambda p: -p.count("/")):
        os.utime(os.path.join(a.root, d), ns=(BASE_MTIME * 10**9, BASE_MTIME * 10**9))
    os.utime(os.path.join(a.root, "node_modules/.bin"), ns=(BASE_MTIME * 10**9,) * 2)
    os.utime(a.root, ns=(BASE_MTIME * 10**9, BASE_MTIME * 10**9))

    with open(a.list, "w") as f:
        for p in g.small:
            f.write(p + "\n")
    print("gentree: %d files, %d dirs, %.1f MB" % (g.nfiles, len(set(g.dirs)), g.nbytes / 1e6))


if __name__ == "__main__":
    main()
