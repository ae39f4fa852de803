"""The report of ``bench/run.py``: its results, the table, the goal lines, the details, the JSON summary.

``results[stack]`` is a list of runs (``--repeat``), each run a list of ``Result``
(one per N). Every figure of the table is the median over the runs, with the range
(min-max) when there are several; the goal lines compare medians, and give the
ratio of each pair of runs (run k of ours against run k of the baseline, which ran
minutes apart in the same interleaved round).
"""
from dataclasses import dataclass, field
import statistics


@dataclass
class Result:
    stack: str
    n: int
    connected: int = 0
    connect_seconds: float = 0.0
    rss_per_conn_kib: float | None = None
    rounds: list[float] = field(default_factory=list)  # last-delivery latency per round, seconds
    all_latencies_p50: float | None = None
    all_latencies_p99: float | None = None
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    closed: int = 0
    flood_rate: float | None = None
    flood_seconds: float | None = None
    server_cpu_us_per_delivery: float | None = None
    server_cpu_pct: float | None = None
    client_cpu_pct: float | None = None  # busiest client process, % of one core, during the flood / rounds
    idle_cpu_pct: float | None = None  # server CPU with the N sockets connected and idle
    round_server_us: float | None = None  # server CPU per delivery over the rounds
    round_client_us: float | None = None  # all client processes' CPU per delivery over the rounds
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    def p(self, q: float) -> float | None:
        return percentile(self.rounds, q) if self.rounds else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)




Runs = list[list[Result]]


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def fmt(value, spec: str, none: str = "—") -> str:
    return none if value is None else format(value, spec)


def present(values) -> list[float]:
    return [v for v in values if v is not None]


def median(values) -> float | None:
    values = present(values)
    return statistics.median(values) if values else None


def spread(values, spec: str, unit: str = "", scale: float = 1.0) -> str:
    """``median unit (min–max)`` over the runs' values (None: a run without the figure); ``—`` if none."""
    values = [v * scale for v in present(values)]
    if not values:
        return "—"
    text = format(statistics.median(values), spec) + unit
    if len(values) > 1:
        text += f" ({format(min(values), spec)}–{format(max(values), spec)})"
    return text


def by_n(run: list[Result]) -> dict[int, Result]:
    return {r.n: r for r in run}


def figure(runs: Runs, n: int, get) -> list[float | None]:
    """One figure of every run at N = n (runs without that N are left out)."""
    return [get(by_n(run)[n]) for run in runs if n in by_n(run)]


def table(results: dict[str, Runs], ns: list[int], flood_n: int) -> str:
    big_n = ns[-1]
    head = ["stack", f"deliveries/s (flood, N={flood_n:,})"]
    head += [f"fan-out N={n:,} p50 / p99" for n in ns]
    head += ["lost", f"RSS per idle conn (N={big_n:,})", "server CPU per delivery (flood)",
             f"server CPU idle (N={big_n:,})", "busiest client process"]
    rows = [head]
    for stack, runs in results.items():
        row = [stack, spread(figure(runs, flood_n, lambda r: r.flood_rate), ",.0f")]
        for n in ns:
            p50 = figure(runs, n, lambda r: r.p(0.5))
            p99 = figure(runs, n, lambda r: r.p(0.99))
            row.append("—" if not present(p50) else
                       f"{spread(p50, ',.0f', ' ms', 1000)} / {spread(p99, ',.0f', ' ms', 1000)}")
        every = [r for run in runs for r in run]
        row.append(f"{sum(r.lost for r in every):,} of {sum(r.expected for r in every):,}")
        rss = figure(runs, big_n, lambda r: r.rss_per_conn_kib)
        row.append(spread(rss, ".1f", " KiB"))
        cpu = figure(runs, flood_n, lambda r: r.server_cpu_us_per_delivery)
        pct = median(figure(runs, flood_n, lambda r: r.server_cpu_pct))
        row.append("—" if not present(cpu) else f"{spread(cpu, '.1f', ' µs')}, {pct:.0f}% of a core")
        row.append(spread(figure(runs, big_n, lambda r: r.idle_cpu_pct), ".1f", "%"))
        row.append(f"{max((r.client_cpu_pct or 0) for r in every):.0f}% of a core" if every else "—")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def ratio(a, b) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def compare(mine: Runs, base: Runs, n: int, get) -> tuple[float | None, list[float]]:
    """Median of ours / median of the baseline, and the ratio of each run's pair (run k with run k)."""
    med = ratio(median(figure(mine, n, get)), median(figure(base, n, get)))
    pairs = []
    for run_m, run_b in zip(mine, base):
        m, b = by_n(run_m).get(n), by_n(run_b).get(n)
        r = ratio(m and get(m), b and get(b))
        if r is not None:
            pairs.append(r)
    return med, pairs


def ratio_text(med: float | None, pairs: list[float]) -> str:
    text = fmt(med, ".2f") + "x"
    if len(pairs) > 1:
        text += f" (runs {min(pairs):.2f}–{max(pairs):.2f}x)"
    return text


def verdict(ok: bool | None) -> str:
    return "" if ok is None else (" — met" if ok else " — NOT met")


def goals(results: dict[str, Runs], ns: list[int], flood_n: int, ours: str = "ours-daphne") -> str:
    """Issue #7's goals, ``ours`` against the baseline of the same run(s), on the medians."""
    if ours not in results or "baseline" not in results:
        return ""
    mine, base = results[ours], results["baseline"]
    runs = min(len(mine), len(base))
    out = [f"goals ({ours} against baseline, " + ("this run" if runs == 1 else f"medians of {runs} runs") + "):"]
    med, pairs = compare(mine, base, flood_n, lambda r: r.flood_rate)
    out.append(f"- deliveries/s at N={flood_n}: {ratio_text(med, pairs)} the baseline's (goal >= 2x)"
               f"{verdict(None if med is None else med >= 2)}")
    for n in ns:
        if n < 1000 or not figure(mine, n, lambda r: r) or not figure(base, n, lambda r: r):
            continue
        p50, p50s = compare(mine, base, n, lambda r: r.p(0.5))
        p99, p99s = compare(mine, base, n, lambda r: r.p(0.99))
        ok = None if p50 is None or p99 is None else p50 <= 0.5 and p99 <= 0.5
        out.append(f"- fan-out to {n:,}: p50 {ratio_text(p50, p50s)}, p99 {ratio_text(p99, p99s)} the baseline's "
                   f"(goal <= 0.5x){verdict(ok)}")
    lost = sum(r.lost for run in mine for r in run)
    base_lost = sum(r.lost for run in base for r in run)
    out.append(f"- lost deliveries: {lost} (baseline {base_lost}) (goal 0 where the baseline loses none)"
               f"{verdict(None if base_lost else lost == 0)}")
    rss = median(figure(mine, ns[-1], lambda r: r.rss_per_conn_kib))
    out.append(f"- RSS per idle connection at N={ns[-1]:,}: "
               f"{spread(figure(mine, ns[-1], lambda r: r.rss_per_conn_kib), '.1f', ' KiB')} (goal <= 20 KiB)"
               f"{verdict(None if rss is None else rss <= 20)}")
    two = results.get(f"{ours}-x2")
    if two and figure(two, flood_n, lambda r: r.flood_rate) and figure(mine, flood_n, lambda r: r.flood_rate):
        growth, pairs = compare(two, mine, flood_n, lambda r: r.flood_rate)
        out.append(f"- two server processes on one Redis: deliveries/s {ratio_text(growth, pairs)} one process's "
                   f"(goal > 1x){verdict(None if growth is None else growth > 1)}")
    return "\n".join(out)


def details(results: dict[str, Runs]) -> str:
    out = []
    for stack, runs in results.items():
        for k, run in enumerate(runs, 1):
            for r in run:
                line = (f"{stack} N={r.n}" + (f" run {k}" if len(runs) > 1 else "") + ": "
                        f"connected {r.connected} in {r.connect_seconds:.1f}s, "
                        f"flood {fmt(r.flood_rate, ',.0f')}/s, "
                        f"RSS/conn {fmt(r.rss_per_conn_kib, '.1f')} KiB, rounds {len(r.rounds)}, "
                        f"last-delivery p50 {fmt_ms(r.p(0.5))} p99 {fmt_ms(r.p(0.99))}, "
                        f"all-deliveries p50 {fmt_ms(r.all_latencies_p50)} p99 {fmt_ms(r.all_latencies_p99)}, "
                        f"delivered {r.delivered}/{r.expected}, duplicates/out-of-order {r.duplicates}, "
                        f"server CPU idle {fmt(r.idle_cpu_pct, '.1f')}%, "
                        f"CPU per delivery in rounds: server {fmt(r.round_server_us, '.1f')} µs, "
                        f"clients {fmt(r.round_client_us, '.1f')} µs; "
                        f"busiest client process {fmt(r.client_cpu_pct, '.0f')}%")
                if r.notes:
                    line += "; " + "; ".join(r.notes)
                out.append(line)
    return "\n".join(out)


# The figures of the table, for --json's per-stack summary: name -> (N selector, getter).
FIGURES = {
    "deliveries_per_s": ("flood", lambda r: r.flood_rate),
    "server_cpu_us_per_delivery": ("flood", lambda r: r.server_cpu_us_per_delivery),
    "server_cpu_pct_flood": ("flood", lambda r: r.server_cpu_pct),
    "rss_per_idle_conn_kib": ("big", lambda r: r.rss_per_conn_kib),
    "server_cpu_idle_pct": ("big", lambda r: r.idle_cpu_pct),
}


def summary(results: dict[str, Runs], ns: list[int], flood_n: int) -> dict:
    """Per stack and figure: the runs' values, their median, min and max (what the table prints)."""

    def stats(values) -> dict:
        values = present(values)
        return {"runs": values, "median": median(values),
                "min": min(values, default=None), "max": max(values, default=None)}

    out = {}
    for stack, runs in results.items():
        figures = {name: stats(figure(runs, flood_n if which == "flood" else ns[-1], get))
                   for name, (which, get) in FIGURES.items()}
        for n in ns:
            figures[f"fanout_p50_s_n{n}"] = stats(figure(runs, n, lambda r: r.p(0.5)))
            figures[f"fanout_p99_s_n{n}"] = stats(figure(runs, n, lambda r: r.p(0.99)))
        figures["lost"] = sum(r.lost for run in runs for r in run)
        figures["expected"] = sum(r.expected for run in runs for r in run)
        out[stack] = figures
    return out
