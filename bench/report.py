#!/usr/bin/env python3
"""Prints the benchmark table and writes it as markdown.

Usage: report.py RESULTS.tsv FACTS.txt OUT.md

RESULTS.tsv lines: registry <TAB> metric <TAB> run <TAB> value (written by run.sh).
Every ratio is oriented so that > 1 means Berth did better: berth/distribution for figures
where higher is better (MiB/s, req/s), distribution/berth where lower is better (seconds,
milliseconds, CPU seconds, MiB of memory).
"""

import statistics
import sys
from collections import defaultdict

REGS = ("berth", "distribution")

# metric, label, unit, higher_is_better, aggregate, decimals
ROWS = [
    ("push_mibs", "push throughput", "MiB/s", True, "median", 1),
    ("push_s", "push time", "s", False, "median", 2),
    ("push_cpu_s", "server CPU during push", "s", False, "median", 2),
    ("raw_upload_mibs", "raw upload, curl POST+PUT 256 MiB", "MiB/s", True, "median", 1),
    ("pull_mibs", "pull throughput", "MiB/s", True, "median", 1),
    ("raw_download_mibs", "raw download, curl GET 256 MiB", "MiB/s", True, "median", 1),
    ("pull_s", "pull time", "s", False, "median", 2),
    ("pull_cpu_s", "server CPU during pull", "s", False, "median", 2),
    ("head_rps", "manifest HEAD throughput, oha", "req/s", True, "median", 0),
    ("head_p50_ms", "manifest HEAD latency p50", "ms", False, "median", 3),
    ("head_p99_ms", "manifest HEAD latency p99", "ms", False, "median", 3),
    ("head_cpu_s", "server CPU during HEAD load", "s", False, "median", 2),
    ("get_rps", "manifest GET throughput, wrk", "req/s", True, "median", 0),
    ("get_p50_ms", "manifest GET latency p50", "ms", False, "median", 3),
    ("get_p99_ms", "manifest GET latency p99", "ms", False, "median", 3),
    ("get_cpu_s", "server CPU during GET load", "s", False, "median", 2),
    ("get_errors", "wrk socket errors during GET load", "count", None, "max", 0),
    ("peak_rss_mib", "server peak RSS", "MiB", False, "max", 1),
]


def main():
    results_path, facts_path, md_path = sys.argv[1:4]
    data = defaultdict(list)  # (registry, metric) -> [(run, value)]
    for line in open(results_path):
        reg, metric, run, value = line.rstrip("\n").split("\t")
        data[(reg, metric)].append((int(run), float(value)))
    facts = [l.rstrip("\n") for l in open(facts_path) if l.strip()]
    present = [r for r in REGS if any(k[0] == r for k in data)]

    def agg(reg, metric, how):
        vals = [v for _, v in data.get((reg, metric), [])]
        if not vals:
            return None
        return statistics.median(vals) if how == "median" else max(vals)

    header = ["figure"] + present
    if len(present) == 2:
        header.append("ratio (>1: berth better)")
    rows = []
    for metric, label, unit, higher, how, dec in ROWS:
        vals = [agg(r, metric, how) for r in present]
        if all(v is None for v in vals):
            continue
        cells = [f"{label} ({unit}{', ' + how if how == 'median' and metric[:4] in ('push', 'pull') else ''})"]
        cells += ["-" if v is None else f"{v:.{dec}f}" for v in vals]
        if len(present) == 2:
            b, d = vals
            if higher is None or b is None or d is None or b == 0 or d == 0:
                cells.append("-")
            else:
                cells.append(f"{(b / d) if higher else (d / b):.2f}")
        rows.append(cells)

    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def fmt(r):
        return "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths))
        )

    runs_lines = []
    for metric in ("push_mibs", "pull_mibs"):
        for r in present:
            vals = sorted(data.get((r, metric), []))
            if vals:
                runs_lines.append(
                    f"{r} {metric.replace('_mibs', '')} MiB/s per run: "
                    + ", ".join(f"{v:.1f}" for _, v in vals)
                )

    print()
    print("== machine and versions")
    for f in facts:
        print("  " + f)
    print()
    print("== results (push/pull: median of the runs; ratio > 1 means Berth did better)")
    print(fmt(header))
    print(fmt(["-" * w for w in widths]))
    for r in rows:
        print(fmt(r))
    print()
    for l in runs_lines:
        print("  " + l)
    print()

    with open(md_path, "w") as md:
        md.write("# Berth vs. distribution benchmark results\n\n")
        md.write("Produced by `bench/run.sh`; see `bench/README.md` for what is measured.\n\n")
        md.write("## Machine and versions\n\n")
        for f in facts:
            md.write(f"- {f}\n")
        md.write("\n## Results\n\n")
        md.write("Push and pull: median of the runs. Ratio > 1 means Berth did better "
                 "(berth/distribution for MiB/s and req/s, distribution/berth for times, "
                 "CPU and memory).\n\n")
        md.write("| " + " | ".join(header) + " |\n")
        md.write("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |\n")
        for r in rows:
            md.write("| " + " | ".join(r) + " |\n")
        md.write("\n")
        for l in runs_lines:
            md.write(f"- {l}\n")


if __name__ == "__main__":
    main()
