"""The "Load test" section of docs/benchmarks.md: the figures, the knee, and on paper the
capacity a county and Sweden need.

Only the text between the section's markers is replaced; the rest of the file is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.measure import GROUPS

if TYPE_CHECKING:
    from loadtest.run import Calibration, LocustRow, Step

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADING = "## Load test"
START = "<!-- loadtest:start (written by `make loadtest`; do not edit by hand) -->"
END = "<!-- loadtest:end -->"

# Locust's request names, in the order the tables show them.
ORDER = (
    "feed poll → 304",
    "feed poll → 200 (changed)",
    "login form",
    "login (argon2)",
    "person week",
    "helper week",
    "person booking",
    "caregiver start (people of the unit)",
    "caregiver week",
    "unit day list",
    "booking form",
    "booking check (live)",
    "booking book",
    "push create",
    "push update (moved)",
    "push unchanged",
    "push cancel",
)

# --- The capacity model (assumptions, stated in the section) --------------------------------

# People with ongoing care who use the calendar: about 15 % of inhabitants ("tens of
# thousands" of Kronoberg's 200,000; the same share of Sweden's 10 million).
POPULATIONS = (("Kronoberg (200,000 inhabitants)", 30_000), ("Sweden (10 million)", 1_500_000))
FEEDS_PER_PERSON = 0.6 * 1.3  # 60 % subscribe, on 1.3 devices on average
POLLS_PER_FEED_DAY = 24  # calendar apps poll every 15 min to a few hours: hourly on average
CHANGED_SHARE = 0.05  # polls answered 200: a change since the last poll
# Requests per person with ongoing care per day, by the server's request types.
DAILY: dict[str, float] = {
    "feed 304": FEEDS_PER_PERSON * POLLS_PER_FEED_DAY * (1 - CHANGED_SHARE),
    "feed 200": FEEDS_PER_PERSON * POLLS_PER_FEED_DAY * CHANGED_SHARE,
    # the person signs in every third day (0.3) and caregivers once a day (1 per 20 people)
    "login form": 0.35,
    "login (argon2)": 0.35,
    # 1.5 weeks a visit for the person; caregivers open the week before booking
    "week page": 0.45 + 0.2,
    "visit page": 0.15,
    "caregiver start": 0.15,  # three a day per caregiver, one caregiver per 20 people
    "unit day list": 0.1,
    "booking form": 0.1,  # a form for 36 visits a year, 18 of them booked here
    "booking check": 0.2,
    "booking book": 0.05,
    "push PUT": 0.3,  # 40 visits a year from units' own systems, ~2.7 pushes each
    "push DELETE": 0.02,
}
FEED_TYPES = ("feed 304", "feed 200")
# Share of the day's requests in the busiest hour: phones poll round the clock, people and
# staff mostly 8-17.
PEAK_HOUR = {"feed": 1.5 / 24, "other": 0.15}
UTILISATION = 0.6  # plan for this share of the cores at the peak hour (the knee comes later)


@dataclass(frozen=True)
class Knee:
    """Where latency degrades, and the most served before it."""

    degraded: Step | None
    sustained: Step
    reason: str


def find_knee(steps: list[Step]) -> Knee:
    """The first step whose p95 is more than twice the lightest step's, or whose
    throughput per virtual user fell by more than a fifth (the server no longer keeps up)."""
    base = steps[0]
    base_rate = base.total.rps / base.users
    sustained = base
    for step in steps[1:]:
        efficiency = (step.total.rps / step.users) / base_rate
        if step.total.p95 > 2 * max(base.total.p95, 1) or efficiency < 0.8:
            reason = (
                f"p95 {step.total.p95:.0f} ms against {base.total.p95:.0f} ms at "
                f"{base.users} users; throughput per user {efficiency:.0%} of the lightest step's"
            )
            return Knee(step, sustained, reason)
        sustained = step
    return Knee(None, sustained, "no step degraded")


# Which user class asks for each server request type.
CLASS_OF = {
    "feed 304": "Phone",
    "feed 200": "Phone",
    "login form": "PersonVisit",
    "login (argon2)": "PersonVisit",
    "week page": "PersonVisit",
    "visit page": "PersonVisit",
    "caregiver start": "Caregiver",
    "unit day list": "Caregiver",
    "booking form": "Caregiver",
    "booking check": "Caregiver",
    "booking book": "Caregiver",
    "push PUT": "ProviderSystem",
    "push DELETE": "ProviderSystem",
}


@dataclass(frozen=True)
class Costs:
    """CPU per request type (the app's and PostgreSQL's together), in milliseconds."""

    cpu_ms: dict[str, float]
    per_class: dict[str, tuple[int, float]]  # requests, CPU ms a request on average
    render_ms: float
    db_share: float


# The writes that change a calendar, by server type: each has its person's feed rendered
# again on the worker's background thread, outside the request's own time.
WRITES = {
    "booking book": ("booking book",),
    "push PUT": ("push create", "push update (moved)"),
    "push DELETE": ("push cancel",),
}


def costs(
    calibrations: list[Calibration], steps: list[Step], render_app_ms: float, knee: Knee
) -> Costs:
    """Each user class ran alone and lightly loaded; its CPU (app and this database's
    PostgreSQL backends), less the feed renders its writes caused, is shared among its
    request types in proportion to their median server times, and each write is charged
    its render. A type the class did not ask for alone (a feed's 200 after a change) is
    priced by its median server time in the lightest step at the class's CPU per ms."""
    app, db = GROUPS[0], GROUPS[1]
    load = knee.sustained
    db_share = load.cpu.cores[db] / max(1e-9, load.cpu.cores[app] + load.cpu.cores[db])
    render_ms = render_app_ms / max(1e-9, 1 - db_share)  # the app's part, plus PostgreSQL's
    cpu_ms: dict[str, float] = {}
    per_class: dict[str, tuple[int, float]] = {}
    rate: dict[str, float] = {}  # CPU ms per ms of median server time, by class
    for cal in calibrations:
        cpu = 1000 * (cal.app_seconds + cal.db_seconds)
        per_class[cal.user_class] = (cal.requests, cpu / max(1, cal.requests))
        changes = {
            kind: sum(r.count - r.failures for r in cal.rows if r.name in names)
            for kind, names in WRITES.items()
        }
        cpu = max(0.0, cpu - sum(changes.values()) * render_ms)
        own = {n: v for n, v in cal.server.ms.items() if CLASS_OF.get(n) == cal.user_class}
        weight = sum(len(v) * cal.server.median(n) for n, v in own.items())
        rate[cal.user_class] = cpu / max(1e-9, weight)
        for name, values in own.items():
            cpu_ms[name] = cal.server.median(name) * rate[cal.user_class]
            cpu_ms[name] += render_ms * changes.get(name, 0) / len(values)
    for name in DAILY:
        if name not in cpu_ms:
            median = next((s.server.median(name) for s in steps if s.server.ms.get(name)), 0.0)
            cpu_ms[name] = median * rate.get(CLASS_OF[name], 0.0)
    return Costs(cpu_ms, per_class, render_ms, db_share)


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def capacity_lines(c: Costs) -> list[str]:
    """The capacity table for the county and for Sweden, and how it is reckoned."""
    per_person_cpu = sum(DAILY[n] * c.cpu_ms[n] for n in DAILY) / 1000  # CPU s a day
    renders = FEEDS_PER_PERSON  # each feed renders anew on its first poll of a day
    render_cpu = renders * c.render_ms / 1000
    lines = [
        "| request type | per person a day | CPU ms each | CPU ms per person a day |",
        "|---|---|---|---|",
    ]
    for name, rate in DAILY.items():
        lines.append(
            f"| {name} | {rate:.2f} | {_fmt(c.cpu_ms[name])} | {_fmt(rate * c.cpu_ms[name])} |"
        )
    lines.append(
        f"| feed render for a new day (first poll after midnight) | {renders:.2f} | "
        f"{_fmt(c.render_ms)} | {_fmt(renders * c.render_ms)} |"
    )
    total_requests = sum(DAILY.values())
    lines.append(
        f"| **all** | {total_requests:.1f} requests | | "
        f"**{_fmt(1000 * (per_person_cpu + render_cpu))}** |"
    )
    lines += [
        "",
        "| | people with care | requests/day | mean req/s | peak-hour req/s | "
        "peak-hour CPU (cores) | cores to provision (app + PostgreSQL) | "
        "feed renders after midnight (cores for 1 h) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, people in POPULATIONS:
        day = {n: DAILY[n] * people for n in DAILY}
        peak = {
            n: v * (PEAK_HOUR["feed"] if n in FEED_TYPES else PEAK_HOUR["other"]) / 3600
            for n, v in day.items()
        }
        peak_cpu = sum(peak[n] * c.cpu_ms[n] for n in DAILY) / 1000
        cores = peak_cpu / UTILISATION
        app_cores, db_cores = cores * (1 - c.db_share), cores * c.db_share
        midnight = people * FEEDS_PER_PERSON * c.render_ms / 1000 / 3600 / UTILISATION
        lines.append(
            f"| {label} | {people:,} | {sum(day.values()):,.0f} | "
            f"{sum(day.values()) / 86400:,.1f} | {sum(peak.values()):,.1f} | {peak_cpu:,.2f} | "
            f"{cores:,.1f} ({app_cores:,.1f} + {db_cores:,.1f}) | {midnight:,.1f} |"
        )
    return lines


def per_core(step: Step) -> float:
    """Requests a second for each core the app and its PostgreSQL backends used: what the
    step shows of the mix's cost, whatever else the machine was doing."""
    used = step.cpu.cores[GROUPS[0]] + step.cpu.cores[GROUPS[1]]
    return step.total.rps / max(1e-9, used)


def _cell(row: LocustRow | None) -> str:
    if row is None or row.count == 0:
        return "–"
    text = f"{row.rps:.1f}/s · {row.p50:.0f} / {row.p95:.0f} / {row.p99:.0f}"
    return f"*{text}*" if row.count < 50 else text


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB" if value >= 1e6 else f"{value / 1e3:,.0f} kB"


def section(
    *,
    machine: dict[str, Any],
    seeded: dict[str, Any],
    after: dict[str, Any],
    steps: list[Step],
    calibrations: list[Calibration],
    scans: dict[str, tuple[int, ...]],
    problems: list[str],
    seconds: int,
    pace: float,
) -> str:
    """The Markdown between the section's markers."""
    knee = find_knee(steps)
    cost = costs(calibrations, steps, seeded["render_cpu_ms_per_feed"], knee)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        START,
        "",
        f"Measured {machine['started']} on {machine['cpus']} CPUs ({machine['cpu']}, "
        f"{machine['memory_gb']} GB), {machine['system']}, CPython {machine['python']}, "
        f"PostgreSQL {after['postgresql']} (shared_buffers {after['shared_buffers']}, "
        f"max_connections {after['max_connections']}); {versions}. "
        f"gunicorn as in production (`calendar_app/gunicorn_conf.py`): {machine['workers']} "
        f"gthread workers × {machine['threads']} threads, the access log on. "
        f"**The machine was shared**: load average {machine['load_before'][0]:.2f} and "
        f"{machine['busy_before']:.2f} cores busy before the run, "
        f"{machine['load_after'][0]:.2f} after; the *other* column below is what the rest "
        "of the machine used during each step, the load generator (locust) ran on the same "
        "two cores.",
        "",
        f"Data: {seeded['people']:,} people, {seeded['bookings']:,} bookings "
        f"({seeded['series']:,} weekly series) from {seeded['units']} units "
        f"({seeded['pushing_units']} pushing from their own systems), "
        f"{seeded['care_relationships']:,} care relationships, {seeded['caregivers']} "
        f"caregivers, {seeded['helpers']} helpers, {seeded['feeds']:,} feeds; "
        f"{_mb(seeded['database_bytes'])} in PostgreSQL; seeded in "
        f"{seeded['total_seconds']:.0f} s, of which rendering every feed once "
        f"{seeded['seconds']['feed renders']:.0f} s ({seeded['render_cpu_ms_per_feed']:.1f} ms "
        f"of the app's CPU per feed). Each step ran {seconds} s after a warm-up"
        + (f", think times × {pace}" if pace != 1 else "")
        + f"; the load phase took {machine['load_seconds']} s.",
        "",
        "### Throughput and latency by step",
        "",
        "| users | req/s | failed | p50 ms | p95 ms | p99 ms | app cores | "
        "PostgreSQL cores (this DB) | req/s per core (app + this DB) | "
        "PostgreSQL (rest of server) | locust | other | machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        c = step.cpu.cores
        marker = " ←" if knee.degraded is step else ""
        lines.append(
            f"| {step.users}{marker} | {step.total.rps:.1f} | {step.total.failures} | "
            f"{step.total.p50:.0f} | {step.total.p95:.0f} | {step.total.p99:.0f} | "
            f"{c[GROUPS[0]]:.2f} | {c[GROUPS[1]]:.2f} | {per_core(step):.0f} | "
            f"{c[GROUPS[2]]:.2f} | "
            f"{c[GROUPS[3]]:.2f} | {c[GROUPS[4]]:.2f} | {step.cpu.machine:.2f} of "
            f"{machine['cpus']} |"
        )
    lines += ["", "### By request type: req/s · p50 / p95 / p99 ms", ""]
    header = "| request | " + " | ".join(f"{s.users} users" for s in steps) + " |"
    lines += [header, "|---" * (len(steps) + 1) + "|"]
    names = [n for n in ORDER if any(r.name == n for s in steps for r in s.rows)]
    names += sorted({r.name for s in steps for r in s.rows} - set(names))
    for name in names:
        cells = [_cell(next((r for r in s.rows if r.name == name), None)) for s in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Italics: fewer than 50 requests of the type in the step (p99 is then little more "
        "than the slowest one).",
        "",
    ]
    if knee.degraded is not None:
        d = knee.degraded
        lines.append(
            f"**Knee**: latency degrades at **{d.users} users ({d.total.rps:.0f} req/s)**: "
            f"{knee.reason}. The most served before it: **{knee.sustained.total.rps:.0f} req/s "
            f"at {knee.sustained.users} users** (p95 {knee.sustained.total.p95:.0f} ms), with "
            f"the app at {knee.sustained.cpu.cores[GROUPS[0]]:.2f} cores and PostgreSQL at "
            f"{knee.sustained.cpu.cores[GROUPS[1]]:.2f}."
        )
    else:
        lines.append("**Knee**: no step degraded; add heavier steps (`--steps`).")
    top = max(steps, key=lambda s: s.total.rps)
    lines += [
        "",
        f"**Saturation**: the most served was **{top.total.rps:.0f} req/s at {top.users} "
        f"users** (p95 {top.total.p95:.0f} ms), the machine {top.cpu.machine:.2f} of "
        f"{machine['cpus']} cores busy: the app {top.cpu.cores[GROUPS[0]]:.2f}, PostgreSQL "
        f"{top.cpu.cores[GROUPS[1]]:.2f}, locust {top.cpu.cores[GROUPS[3]]:.2f}, the rest "
        f"{top.cpu.cores[GROUPS[4]] + top.cpu.cores[GROUPS[2]]:.2f}.",
    ]
    failures = [f for s in steps for f in s.failures]
    if failures:
        lines += ["", "Failures:", ""]
        lines += [f"- {name}: {error} (× {count})" for name, error, count in failures[:12]]
    if problems:
        lines += ["", f"gunicorn logged {len(problems)} error lines, e.g.:", ""]
        lines += [f"    {line[:160]}" for line in problems[:5]]
    alone = {
        n: c.server for c in calibrations for n in c.server.ms if CLASS_OF.get(n) == c.user_class
    }
    lines += [
        "",
        "### Cost by request type",
        "",
        "Each user class ran alone for a short while at light load (after the steps). Server "
        "time: what a worker spent on the request (gunicorn's access log). CPU: the class's "
        "CPU in the app and in this database's PostgreSQL backends, shared among its "
        "requests in proportion to their median server times, after taking out the feed "
        "renders its writes caused on the workers' background threads; those are charged to "
        "the writes (a booking's or a push's CPU includes the render of the person's feed).",
        "",
        "| type | requests alone | median server ms | mean server ms | CPU ms each |",
        "|---|---|---|---|---|",
    ]
    for name in DAILY:
        times = alone.get(name)
        count = len(times.ms[name]) if times else 0
        median = f"{times.median(name):.0f}" if times else "–"
        mean = f"{times.mean(name):.1f}" if times else "–"
        lines.append(f"| {name} | {count} | {median} | {mean} | {_fmt(cost.cpu_ms[name])} |")
    lines += [
        "",
        "Alone: "
        + "; ".join(
            f"{name} {count} requests, {_fmt(ms)} CPU ms each on average"
            for name, (count, ms) in cost.per_class.items()
        )
        + f". PostgreSQL's share of the CPU (at {knee.sustained.users} users): "
        f"{cost.db_share:.0%}.",
        "",
        "### Capacity on paper",
        "",
        *capacity_lines(cost),
        "",
    ]
    audit_row = after["audit_bytes"] / max(1, after["audit_rows"])
    booking_row = after["booking_bytes"] / max(1, after["bookings"])
    audited = DAILY["feed 304"] + DAILY["feed 200"] + 0.6
    lines += [
        f"Storage: an audit row takes {audit_row:.0f} bytes with its index, a booking "
        f"{booking_row:.0f}; every feed poll is audited, so a person adds about "
        f"{audited:.0f} audit rows a day ({audited * audit_row * 365 / 1e6:.1f} MB a year) "
        f"against about 40 bookings ({40 * booking_row / 1e3:.0f} kB) a year. "
        + "; ".join(
            f"{label}: {people * audited * audit_row * 365 / 1e9:,.0f} GB of audit log a year"
            for label, people in POPULATIONS
        )
        + ".",
        "",
        "Sequential scans during the load (PostgreSQL's counters, tables read most):",
        "",
        "| table | sequential scans | rows read by them | index scans |",
        "|---|---|---|---|",
    ]
    ranked = sorted(scans.items(), key=lambda item: -item[1][1])
    for name, (seq, rows_read, idx) in ranked[:6]:
        lines.append(f"| {name} | {seq:,} | {rows_read:,} | {idx:,} |")
    lines += ["", END]
    return "\n".join(lines)


def write_doc(body: str, doc: Path = DOC) -> None:
    """Replace the section between its markers, or add the section at the end."""
    current = doc.read_text(encoding="utf-8")
    if START in current and END in current:
        head, rest = current.split(START, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(head + body + tail, encoding="utf-8")
        return
    doc.write_text(current.rstrip("\n") + f"\n\n{HEADING}\n\n{body}\n", encoding="utf-8")
