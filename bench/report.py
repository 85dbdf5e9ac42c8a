#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn bench/run.sh's medians into the Markdown report.

    report.py MEDIANS.tsv SKIPPED.tsv KEY=VALUE...

MEDIANS.tsv: key, median, all samples (comma separated). Times are in
microseconds, sizes in bytes, peak RSS in KiB. Each row below names the
snapbox key, the peer key, how they compare and the target; a row whose
keys are missing (a peer that was skipped, a section not run) is left out.
"""
import sys

MS = "ms"
BYTES = "bytes"
KIB = "kib"

# (section, figure, snapbox key, peer key, peer name, kind, target, unit)
# kind: "ratio" snapbox/peer <= target (ratio of the medians); "abs" snapbox
# <= target (in unit); "delta" snapbox - peer <= target (ms; the median of
# the paired differences when the samples were taken in pairs); target None:
# information only.
ROWS = [
    ("2 store", "first snapshot", "s2.snap_first", "s2.restic_first", "restic backup",
     "ratio", 0.25, MS),
    ("2 store", "first snapshot", "s2.snap_first", "s2.git_first", "git add -A && commit",
     "ratio", None, MS),
    ("2 store", "first snapshot", "s2.snap_first", "s2.tarzstd_first",
     "tar \\| zstd -1 -T0 (no hashing, no index)", "ratio", None, MS),
    ("2 store", "first snapshot, CPU time (user+sys)", "s2.snap_first.cpu", "s2.restic_first.cpu",
     "restic backup", "ratio", None, MS),
    ("2 store", "first snapshot, CPU time (user+sys)", "s2.snap_first.cpu", "s2.git_first.cpu",
     "git add -A && commit", "ratio", None, MS),
    ("2 store", "re-snapshot, unchanged tree", "s2.snap_rescan", "s2.git_status", "git status",
     "ratio", 1.0, MS),
    ("2 store", "re-snapshot after 100 changed files", "s2.snap_100", "s2.git_100",
     "git add -A && commit", "ratio", 0.5, MS),
    ("2 store", "store size", "s2.snap_size", "s2.restic_size", "restic repository",
     "ratio", 1.0, BYTES),
    ("2 store", "store size", "s2.snap_size", "s2.git_size", "git objects (loose)",
     "ratio", None, BYTES),
    ("2 store", "stat cache (not in the store size; restic's cache is not either)",
     "s2.snap_cache_size", None, None, "abs", None, BYTES),
    ("2 store", "peak RSS, first snapshot", "s2.snap_first.rss", None, None,
     "abs", 100 * 1024, KIB),
    ("2 store", "peak RSS, first snapshot", "s2.snap_first.rss", "s2.restic_first.rss",
     "restic backup", "ratio", None, KIB),
    ("2 store", "peak RSS, first snapshot", "s2.snap_first.rss", "s2.git_first.rss",
     "git add -A && commit", "ratio", None, KIB),
    ("3 restore", "restore 0 after 100 changed files", "s3.snap_restore100",
     "s3.git_restore100", "git checkout -- . && git clean -fdx", "ratio", 0.5, MS),
    ("3 restore", "restore 0 after 100 changed files", "s3.snap_restore100",
     "s3.rsync_restore100", "rsync -a --delete", "ratio", None, MS),
    ("3 restore", "restore 0 after 1000 changed files", "s3.snap_restore1000",
     "s3.git_restore1000", "git checkout -- . && git clean -fdx", "ratio", 0.5, MS),
    ("3 restore", "restore 0 after 1000 changed files", "s3.snap_restore1000",
     "s3.rsync_restore1000", "rsync -a --delete", "ratio", None, MS),
    ("3 diff", "diff --stat, 100 changed files", "s3.snap_diff100", "s3.git_diff100",
     "git diff --stat", "ratio", 0.5, MS),
    ("3 diff", "diff --stat, 1000 changed files", "s3.snap_diff1000", "s3.git_diff1000",
     "git diff --stat", "ratio", 0.5, MS),
    ("5 gc", "gc --keep 1 after three rounds of 1000 changed files", "s5.snap_gc",
     "s5.restic_prune", "restic forget --keep-last 1 --prune", "ratio", None, MS),
    ("5 gc", "store after gc (packs)", "s5.snap_gc_size", "s5.restic_prune_size",
     "restic repository after prune", "ratio", None, BYTES),
    ("5 gc", "peak RSS, gc", "s5.snap_gc.rss", "s5.restic_prune.rss",
     "restic forget --prune", "ratio", None, KIB),
    ("4 run", "run -- true, whole tree (total)", "s4.run_tree", "s4.bwrap",
     "bwrap --unshare-all", "ratio", None, MS),
    ("4 run", "run -- true, whole tree: scan part", "s4.run_tree.scan", "s2.git_status",
     "git status", "ratio", None, MS),
    ("4 run", "run -- true, whole tree: after the scan", "s4.run_tree.after_scan", None, None,
     "abs", 10.0, MS),
    ("4 run", "run -- true, one-file workspace (total)", "s4.run_tiny", "s4.bwrap",
     "bwrap --unshare-all", "ratio", None, MS),
    ("4 run", "run -- true, one-file workspace: after the scan", "s4.run_tiny.after_scan",
     None, None, "abs", 10.0, MS),
    ("4 run", "run -- true, one-file workspace, own small store (total)", "s4.run_tiny_own",
     "s4.bwrap", "bwrap --unshare-all", "ratio", None, MS),
    ("4 run", "run -- true, one-file workspace, own small store: after the scan",
     "s4.run_tiny_own.after_scan", None, None, "abs", 10.0, MS),
    ("4 run", "store open: status of a one-file workspace, shared store vs own store",
     "s4.status_tiny", "s4.status_tiny_own", "own small store", "delta", None, MS),
    ("4 run", "cat every file, inside vs outside", "s4.cat_in.inner", "s4.cat_out.inner",
     "native", "ratio", 1.3, MS),
    ("4 run", "cat every file, bare kernel overlay (no snapbox) vs outside", "s4.cat_ovl.inner",
     "s4.cat_out.inner", "native", "ratio", None, MS),
    ("4 run", "cat every file, inside vs bare kernel overlay", "s4.cat_in.inner",
     "s4.cat_ovl.inner", "bare kernel overlay", "ratio", None, MS),
    ("4 run", "cat every file, inside vs fuse-overlayfs", "s4.cat_in.inner",
     "s4.cat_fuse.inner", "fuse-overlayfs mount", "ratio", None, MS),
    ("4 run", "after the command: run's own end, after cat of every file", "s4.cat_in.after_end",
     "s4.write_none.after_end", "after a command that wrote nothing", "delta", None, MS),
    ("4 run", "cat every file, CPU time, inside vs outside", "s4.cat_in.cpu",
     "s4.cat_out.cpu", "native", "ratio", None, MS),
    ("4 run", "git status, inside vs outside", "s4.gitst_in.inner", "s4.gitst_out.inner",
     "native", "ratio", 1.3, MS),
    ("4 run", "git status, bare kernel overlay (no snapbox) vs outside", "s4.gitst_ovl.inner",
     "s4.gitst_out.inner", "native", "ratio", None, MS),
    ("4 run", "git status, inside vs bare kernel overlay", "s4.gitst_in.inner",
     "s4.gitst_ovl.inner", "bare kernel overlay", "ratio", None, MS),
    ("4 run", "git status, CPU time, inside vs outside", "s4.gitst_in.cpu",
     "s4.gitst_out.cpu", "native", "ratio", None, MS),
    ("4 run", "write 10k small files, inside vs outside", "s4.write_in.inner",
     "s4.write_out.inner", "native", "ratio", None, MS),
    ("4 run", "unlink 10k small files (rm -rf), native, for scale", "s4.rm_out", None, None,
     "abs", None, MS),
    ("4 run", "change list + summary after 10k written files", "s4.write_in.after_end",
     "s4.write_none.after_end", "same run, no writes", "delta", 50.0, MS),
    ("5 layers", "start-up: all layers + limits vs seccomp off", "s5.run_all", "s5.run_unconf",
     "run --seccomp unconfined", "delta", 3.0, MS),
    ("5 layers", "start-up: default layers vs seccomp off", "s5.run_default", "s5.run_unconf",
     "run --seccomp unconfined", "delta", None, MS),
    ("5 layers", "start-up: all layers + limits vs bwrap+seccomp", "s5.run_all",
     "s5.bwrap_seccomp", "bwrap --unshare-all --seccomp", "ratio", None, MS),
    ("5 layers", "bwrap: seccomp filter cost (for scale)", "s5.bwrap_seccomp", "s5.bwrap",
     "bwrap --unshare-all", "delta", None, MS),
    ("5 layers", "find /usr -xdev, CPU time, all layers vs outside", "s5.find_all.cpu",
     "s5.find_out.cpu", "native", "ratio", 1.05, MS),
    ("5 layers", "find /usr -xdev, wall, all layers vs outside", "s5.find_all.inner",
     "s5.find_out.inner", "native", "ratio", None, MS),
    ("5 layers", "find /usr -xdev, CPU time, all layers vs seccomp off", "s5.find_all.cpu",
     "s5.find_unconf.cpu", "run --seccomp unconfined", "ratio", None, MS),
    ("5 layers", "find /usr -xdev, CPU time, bwrap vs outside (for scale)", "s5.find_bwrap.cpu",
     "s5.find_out.cpu", "native", "ratio", None, MS),
]


def fmt(v, unit):
    if v is None:
        return ""
    if unit == MS:
        ms = v / 1000.0
        if ms >= 10000:
            return "%.1f s" % (ms / 1000)
        if ms >= 100:
            return "%.0f ms" % ms
        return "%.1f ms" % ms
    if unit == BYTES:
        return "%.1f MB" % (v / 1e6)
    if unit == KIB:
        return "%.1f MB" % (v / 1024.0)
    return str(v)


def main():
    med = {}
    samples = {}
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1]:
                med[parts[0]] = parts[1]
                samples[parts[0]] = parts[2] if len(parts) > 2 else ""
    skipped = []
    with open(sys.argv[2]) as f:
        skipped = [l.rstrip("\n").split("\t", 1) for l in f if l.strip()]
    meta = dict(a.split("=", 1) for a in sys.argv[3:])

    out = []
    out.append("# snapbox benchmark, %s" % meta.get("date", ""))
    out.append("")
    for k in ("host", "fs", "load_start", "load_end", "cache_drops", "scale", "seed", "tree", "source",
              "snapbox",
              "git", "restic", "rsync", "bwrap", "fuse-overlayfs", "peer settings"):
        if k in meta:
            out.append("- %s: %s" % (k.replace("_", " "), meta[k]))
    out.append("- repetitions: median of %s; start-up rows on a one-file workspace: "
               "median of %s; find /usr: median of %s" % (
                   meta.get("reps", "?"), meta.get("fast_reps", "?"), meta.get("mid_reps", "?")))
    out.append("")
    out.append("| section | figure | snapbox | peer | peer time/size | ratio or delta "
               "| target | result |")
    out.append("| --- | --- | ---: | --- | ---: | ---: | --- | --- |")
    passed = missed = 0
    for sec, fig, a, b, peer, kind, target, unit in ROWS:
        if a not in med or (b is not None and b not in med):
            continue
        av, bv = med[a], med[b] if b else None
        if av == "ERR" or bv == "ERR":
            out.append("| %s | %s | %s | %s | %s | | | ERROR |" % (
                sec, fig, av if av == "ERR" else fmt(float(av), unit), peer or "",
                "ERR" if bv == "ERR" else fmt(float(bv), unit) if bv else ""))
            missed += 1
            continue
        av = float(av)
        bv = float(bv) if bv is not None else None
        res = ""
        if kind == "ratio":
            val = av / bv if bv else float("inf")
            # Three decimals near 1 and under: 0.252x must not read as 0.25x.
            cmp = "%.3fx" % val if val < 10 else "%.1fx" % val
            tgt = "<= %gx" % target if target is not None else "info"
        elif kind == "delta":
            # Interleaved samples: the median of the pairwise differences is
            # far steadier than a difference of medians on a noisy machine.
            sa, sb = samples.get(a, "").split(","), samples.get(b, "").split(",")
            if len(sa) == len(sb) and len(sa) > 1 and "ERR" not in sa + sb:
                d = sorted(float(x) - float(y) for x, y in zip(sa, sb))
                val = d[(len(d) - 1) // 2] / 1000.0
            else:
                val = (av - bv) / 1000.0
            cmp = "%+.1f ms" % val
            tgt = "<= %g ms" % target if target is not None else "info"
        else:
            val = av / 1000.0 if unit == MS else av / 1024.0 if unit == KIB else av
            cmp = ""
            tgt = "<= %g %s" % (target if unit != KIB else target / 1024,
                                "ms" if unit == MS else "MB") if target is not None else "info"
        if target is not None:
            limit = target / 1024.0 if (kind == "abs" and unit == KIB) else target
            ok = val <= limit
            res = "PASS" if ok else "MISS"
            passed += ok
            missed += not ok
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            sec, fig, fmt(av, unit), peer or "", fmt(bv, unit) if bv is not None else "",
            cmp, tgt, res))
    out.append("")
    out.append("%d targets met, %d missed." % (passed, missed))
    if skipped:
        out.append("")
        for name, why in skipped:
            out.append("- SKIP %s: %s" % (name, why))
    out.append("")
    out.append("<details><summary>all samples (us, bytes, KiB)</summary>")
    out.append("")
    out.append("```")
    for k in sorted(samples):
        out.append("%-34s median %-12s samples %s" % (k, med[k], samples[k]))
    out.append("```")
    out.append("</details>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
