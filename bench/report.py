#!/usr/bin/env python3
"""Prints the benchmark table and writes it as markdown.

Usage: report.py RESULTS.tsv FACTS.txt OUT.md

RESULTS.tsv lines: registry <TAB> metric <TAB> run <TAB> value (written by run.sh); the registry
`lambda` holds the api Lambda function's figures, printed as a table of their own.
The ratio compares berth (embedded storage) with distribution and is oriented so that > 1 means
Berth did better: berth/distribution for figures where higher is better (MiB/s, req/s),
distribution/berth where lower is better (seconds, milliseconds, CPU seconds, MiB of memory).
berth-aws (Berth on the local AWS stand-ins, s3s-fs and moto) gets a column but no ratio: its
figures are bound by the stand-ins, so a ratio to distribution would not compare registries.
"""

import statistics
import sys
from collections import defaultdict

REGS = ("berth", "berth-aws", "distribution")
INIT_GOAL_MS = 50.0

# metric, label, unit, higher_is_better, aggregate, decimals
ROWS = [
    ("push_mibs", "push throughput", "MiB/s", True, "median", 1),
    ("push_s", "push time", "s", False, "median", 2),
    ("push_cpu_s", "server CPU during push", "s", False, "median", 2),
    ("push_standin_cpu_s", "stand-in CPU during push (moto + s3s-fs)", "s", None, "median", 2),
    ("raw_upload_mibs", "raw upload, curl POST+PUT 256 MiB", "MiB/s", True, "median", 1),
    ("pull_mibs", "pull throughput", "MiB/s", True, "median", 1),
    ("raw_download_mibs", "raw download, curl GET 256 MiB", "MiB/s", True, "median", 1),
    ("pull_s", "pull time", "s", False, "median", 2),
    ("pull_cpu_s", "server CPU during pull", "s", False, "median", 2),
    ("pull_standin_cpu_s", "stand-in CPU during pull (moto + s3s-fs)", "s", None, "median", 2),
    ("head_rps", "manifest HEAD throughput, oha", "req/s", True, "median", 0),
    ("head_p50_ms", "manifest HEAD latency p50", "ms", False, "median", 3),
    ("head_p99_ms", "manifest HEAD latency p99", "ms", False, "median", 3),
    ("head_cpu_s", "server CPU during HEAD load", "s", False, "median", 2),
    ("head_standin_cpu_s", "stand-in CPU during HEAD load", "s", None, "median", 2),
    ("head_cpu_ms_per_req", "server CPU per manifest HEAD", "ms", False, "median", 3),
    ("get_rps", "manifest GET throughput, wrk", "req/s", True, "median", 0),
    ("get_p50_ms", "manifest GET latency p50", "ms", False, "median", 3),
    ("get_p99_ms", "manifest GET latency p99", "ms", False, "median", 3),
    ("get_cpu_s", "server CPU during GET load", "s", False, "median", 2),
    ("get_standin_cpu_s", "stand-in CPU during GET load", "s", None, "median", 2),
    ("get_cpu_ms_per_req", "server CPU per manifest GET", "ms", False, "median", 3),
    ("get_errors", "wrk socket errors during GET load", "count", None, "max", 0),
    ("peak_rss_mib", "server peak RSS", "MiB", False, "max", 1),
]


def lambda_rows(data, artifacts):
    """The api Lambda function's table: artifact sizes, cold-start init and first request."""
    rows = []
    for name, what, size in artifacts:
        rows.append([f"size: {name} ({what})", f"{size / 1048576:.1f} MiB ({size:,} bytes)"])
    init = [v for _, v in sorted(data.get(("lambda", "init_ms"), []))]
    first = [v for _, v in sorted(data.get(("lambda", "first_request_ms"), []))]
    if init:
        rows.append([f"cold start init (init_us), median / max of {len(init)}",
                     f"{statistics.median(init):.1f} / {max(init):.1f} ms"])
    if first:
        rows.append([f"spawn to first answered GET /v2/ (init included), median / max of {len(first)}",
                     f"{statistics.median(first):.1f} / {max(first):.1f} ms"])
    if init:
        if max(init) < INIT_GOAL_MS:
            verdict = f"met: every cold start's init under {INIT_GOAL_MS:.0f} ms (max {max(init):.1f} ms)"
        elif statistics.median(init) < INIT_GOAL_MS:
            verdict = (f"met at the median only: {sum(v >= INIT_GOAL_MS for v in init)} of {len(init)} "
                       f"starts took {INIT_GOAL_MS:.0f} ms or more (max {max(init):.1f} ms)")
        else:
            verdict = f"NOT met: median {statistics.median(init):.1f} ms"
        rows.append([f"goal: init under {INIT_GOAL_MS:.0f} ms", verdict])
    per_run = []
    if init:
        per_run.append("api init ms per cold start: " + ", ".join(f"{v:.1f}" for v in init))
    if first:
        per_run.append("api spawn to first answer ms per cold start: " + ", ".join(f"{v:.1f}" for v in first))
    return rows, per_run


def parse_artifact(line):
    """'api artifact: NAME: ARCH, BYTES bytes, modified DATE' -> (NAME, 'ARCH, DATE', BYTES)."""
    rest = line[len("api artifact: "):]
    name, _, desc = rest.rpartition(": ")
    arch, size, modified = [p.strip() for p in desc.split(",", 2)]
    what = arch if name.startswith("the same") else f"{arch}, {modified}"
    return name, what, int(size.split()[0])


def main():
    results_path, facts_path, md_path = sys.argv[1:4]
    data = defaultdict(list)  # (registry, metric) -> [(run, value)]
    for line in open(results_path):
        reg, metric, run, value = line.rstrip("\n").split("\t")
        data[(reg, metric)].append((int(run), float(value)))
    lines = [l.rstrip("\n") for l in open(facts_path) if l.strip()]
    facts = [l for l in lines if not l.startswith("api artifact: ")]
    artifacts = [parse_artifact(l) for l in lines if l.startswith("api artifact: ")]
    present = [r for r in REGS if any(k[0] == r for k in data)]
    # berth vs distribution only: berth-aws's figures are bound by the stand-ins (see the docstring).
    compared = ["berth"] if "berth" in present and "distribution" in present else []

    def agg(reg, metric, how):
        vals = [v for _, v in data.get((reg, metric), [])]
        if not vals:
            return None
        return statistics.median(vals) if how == "median" else max(vals)

    header = ["figure"] + present + ["ratio (>1: berth better)" for _ in compared]
    rows = []
    for metric, label, unit, higher, how, dec in ROWS:
        vals = {r: agg(r, metric, how) for r in present}
        if all(v is None for v in vals.values()):
            continue
        cells = [f"{label} ({unit}{', ' + how if how == 'median' and metric[:4] in ('push', 'pull') else ''})"]
        cells += ["-" if vals[r] is None else f"{vals[r]:.{dec}f}" for r in present]
        for b in compared:
            bv, dv = vals[b], vals["distribution"]
            if higher is None or bv is None or dv is None or bv == 0 or dv == 0:
                cells.append("-")
            else:
                cells.append(f"{(bv / dv) if higher else (dv / bv):.2f}")
        rows.append(cells)
    lrows, lper_run = lambda_rows(data, artifacts)

    def widths_of(table):
        return [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]

    def fmt(r, widths, left=False):
        return "  ".join(
            (c.ljust(w) if i == 0 or left else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()

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
    if rows:
        widths = widths_of([header] + rows)
        print("== results (push/pull: median of the runs; ratio: berth vs distribution, > 1 means "
              "Berth did better; berth-aws runs on local stand-ins, so no ratio)")
        print(fmt(header, widths))
        print(fmt(["-" * w for w in widths], widths))
        for r in rows:
            print(fmt(r, widths))
        print()
        for l in runs_lines:
            print("  " + l)
        print()
    if lrows:
        lheader = ["api Lambda function", "value"]
        widths = widths_of([lheader] + lrows)
        print("== api Lambda function (cold starts: release binary on this machine, behind cargo-lambda's emulator)")
        print(fmt(lheader, widths, True))
        print(fmt(["-" * w for w in widths], widths, True))
        for r in lrows:
            print(fmt(r, widths, True))
        print()
        for l in lper_run:
            print("  " + l)
        print()

    with open(md_path, "w") as md:
        md.write("# Berth vs. distribution benchmark results\n\n")
        md.write("Produced by `bench/run.sh`; see `bench/README.md` for what is measured.\n\n")
        md.write("## Machine and versions\n\n")
        for f in facts:
            md.write(f"- {f}\n")
        if rows:
            md.write("\n## Results\n\n")
            md.write("berth: embedded storage; berth-aws: `--storage aws` on the local stand-ins "
                     "(s3s-fs for S3, moto for DynamoDB), which bound its figures: it gets no ratio. "
                     "Push and pull: median of the runs. Ratio > 1 means berth did better than "
                     "distribution (berth/distribution for MiB/s and req/s, distribution/berth for "
                     "times, CPU and memory).\n\n")
            md.write("| " + " | ".join(header) + " |\n")
            md.write("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |\n")
            for r in rows:
                md.write("| " + " | ".join(r) + " |\n")
            md.write("\n")
            for l in runs_lines:
                md.write(f"- {l}\n")
        if lrows:
            md.write("\n## api Lambda function\n\n")
            md.write("Cold starts: the release `api` binary on this machine behind cargo-lambda's "
                     "runtime emulator, a fresh process each time.\n\n")
            md.write("| figure | value |\n| --- | --- |\n")
            for r in lrows:
                md.write("| " + " | ".join(r) + " |\n")
            md.write("\n")
            for l in lper_run:
                md.write(f"- {l}\n")


if __name__ == "__main__":
    main()
