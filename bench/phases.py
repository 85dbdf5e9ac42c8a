#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a command and time its phases from its stderr.

    phases.py [--mark NAME=REGEX]... -- CMD [ARG...]

Prints, one per line, "total <us>" (wall time of CMD), then for each mark
"NAME <us>": the time from the start until the first stderr line matching
REGEX arrived (stderr is read as it is written, so a line printed right after
a phase ends timestamps that phase), and "stdout <last line of CMD's
stdout>". Marks never seen print "NAME -1". CMD's stderr is copied to ours.
Exits with CMD's status.
"""
import os
import re
import subprocess
import sys
import threading
import time


def main():
    argv = sys.argv[1:]
    marks = []
    while argv and argv[0] == "--mark":
        name, _, rx = argv[1].partition("=")
        marks.append((name, re.compile(rx.encode(), re.MULTILINE)))
        argv = argv[2:]
    if not argv or argv[0] != "--":
        sys.exit("usage: phases.py [--mark NAME=REGEX]... -- CMD [ARG...]")
    argv = argv[1:]
    seen = {}
    t0 = time.monotonic_ns()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # A thread drains stdout so a chatty command never blocks on a full pipe
    # while this thread timestamps stderr as it arrives. stderr is read in
    # big chunks, each timestamped when it arrives, and only the complete
    # lines of a chunk are matched, and only while a mark is unseen: a
    # command that prints 10k lines must not wait for this reader.
    chunks = []
    th = threading.Thread(target=lambda: chunks.append(p.stdout.read()))
    th.start()
    fd = p.stderr.fileno()
    partial = b""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            break
        now = time.monotonic_ns()
        sys.stderr.buffer.write(data)  # into bench.log
        if len(seen) == len(marks):
            continue
        data = partial + data
        cut = data.rfind(b"\n") + 1
        partial = data[cut:]
        for name, rx in marks:
            if name not in seen and rx.search(data, 0, cut):
                seen[name] = now
    if partial:
        for name, rx in marks:
            if name not in seen and rx.search(partial):
                seen[name] = time.monotonic_ns()
    th.join()
    out = b"".join(chunks)
    rc = p.wait()
    t1 = time.monotonic_ns()
    print("total %d" % ((t1 - t0) // 1000))
    for name, _ in marks:
        print("%s %d" % (name, (seen[name] - t0) // 1000 if name in seen else -1))
    lines = out.decode(errors="replace").strip().splitlines()
    print("stdout %s" % (lines[-1] if lines else ""))
    sys.exit(rc)


if __name__ == "__main__":
    main()
