"""Before/after comparison of ``bench.run`` between two checkouts, interleaved (docs/benchmarks.md#before-and-after).

    .venv/bin/python -m bench.compare --before ../before --after . --repeat 3 [--stacks ours-daphne] [-- --quick]

Runs ``python -m bench.run --stacks S --json F`` in the *before* checkout, then in the *after*
checkout, K times (before, after, before, after, ...), so that both sides see the same machine
over the same minutes; then prints, per stack and N, the median and range (min-max) of each
side's deliveries/s (flood), fan-out p50/p99 and memory per idle socket. Arguments after ``--``
go to both runs. Each checkout runs with its own code and this interpreter's packages.

A checkout made before ``--repeat`` existed writes ``{stack: [result per N]}``; a newer one
``{"runs": {stack: [[result per N] per run]}}``; both are read.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import percentile

FIGURES = [  # (label, how to read it from one result, format)
    ("deliveries/s", lambda r: r.get("flood_rate"), "{:,.0f}"),
    ("fan-out p50", lambda r: percentile(r["rounds"], 0.5) * 1000 if r.get("rounds") else None, "{:,.1f} ms"),
    ("fan-out p99", lambda r: percentile(r["rounds"], 0.99) * 1000 if r.get("rounds") else None, "{:,.1f} ms"),
    ("KiB per idle socket", lambda r: r.get("rss_per_conn_kib"), "{:,.1f}"),
]


def runs_of(data: dict) -> dict[str, list[list[dict]]]:
    """Every run's results, per stack: ``{stack: [[result per N], ...]}``."""
    if "runs" in data:
        return data["runs"]
    return {stack: [results] for stack, results in data.items()}


def one_run(checkout: Path, stacks: str, extra: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "bench.run", "--stacks", stacks, "--json", str(out), *extra]
    print(f"# {checkout}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    median = statistics.median(values)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="checkout of the earlier commit")
    parser.add_argument("--after", type=Path, default=Path("."), help="checkout of the later commit (default: here)")
    parser.add_argument("--repeat", type=int, default=3, help="runs on each side (default 3)")
    parser.add_argument("--stacks", default="ours-daphne", help="stacks both checkouts know (default ours-daphne)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    parser.add_argument("extra", nargs="*", help="after --: arguments for bench.run on both sides")
    args = parser.parse_args()

    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    collected: dict[str, dict[str, list[list[dict]]]] = {side: {} for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            for side, checkout in sides.items():
                data = one_run(checkout, args.stacks, args.extra, Path(tmp) / f"{side}-{k}.json")
                for stack, runs in runs_of(data).items():
                    collected[side].setdefault(stack, []).extend(runs)

    print(f"\nbefore: {sides['before']}\nafter:  {sides['after']}\n"
          f"{args.repeat} interleaved runs per side; median (min-max)\n")
    for stack in args.stacks.split(","):
        ns = sorted({r["n"] for run in collected["before"].get(stack, []) for r in run})
        for n in ns:
            print(f"{stack}, N={n}")
            for label, read, fmt in FIGURES:
                row = []
                for side in sides:
                    values = [v for run in collected[side].get(stack, []) for r in run if r["n"] == n
                              for v in [read(r)] if v is not None]
                    row.append(spread(values, fmt))
                if row != ["—", "—"]:
                    print(f"  {label:<20} before {row[0]:<34} after {row[1]}")
    if args.json:
        args.json.write_text(json.dumps(collected, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
