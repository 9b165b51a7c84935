"""Time the admission policy alone, on a simulated clock: no pytest, no event loop.

The script builds tickets with random resources, limits and groups, and drives
:class:`pytest_concurrently.scheduling.AdmissionPolicy` the way the plugin does: it
asks ``admit()`` what may start, starts it at the current simulated time, moves the
clock to the ticket that ends first, reports that with ``finish()``, and repeats until
the policy is ``done``. Durations are random too, and nothing sleeps.

For each workload it prints one markdown row: the CPU time spent building the policy
and inside ``admit()`` and ``finish()`` (in all and per ticket), and the simulated
makespan beside a lower bound that no schedule can beat. The bound is the largest of:

- the total work over ``max_in_flight`` (tickets that must run alone count in full);
- for each resource, its exclusive holders one after another, plus its shared holders'
  work over its limit (or the longest shared hold, when it has no limit);
- the longest ticket of each group, summed over the groups (groups never overlap);
- the longest single ticket.

Run ``python benchmarks/scheduling.py --help`` for the options; ``benchmarks/README.md``
explains the output.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pytest_concurrently.scheduling import Access, AdmissionPolicy, Ticket

# ---------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """Tickets, how long each one runs, and the limits of their resources."""

    name: str
    tickets: tuple[Ticket, ...]
    durations: Mapping[int, float]
    limits: Mapping[str, int]


def _duration(rng: random.Random) -> float:
    # Mostly short tests with a long tail, like a real suite: mean about 1 s.
    return min(30.0, max(0.01, rng.lognormvariate(-0.5, 1.0)))


def free_workload(count: int, rng: random.Random) -> Workload:
    """Concurrent tickets that need nothing: what deciding costs when nothing waits."""
    tickets = tuple(Ticket(index) for index in range(count))
    return Workload("no resources", tickets, {t.index: _duration(rng) for t in tickets}, {})


def one_exclusive_workload(count: int, rng: random.Random) -> Workload:
    """Every tenth ticket holds one exclusive resource, like run.py's ``exclusive``."""
    tickets = tuple(
        Ticket(index, resources={"shared-system": Access.EXCLUSIVE} if index % 10 == 9 else {})
        for index in range(count)
    )
    durations = {t.index: _duration(rng) for t in tickets}
    return Workload("every tenth holds one exclusive resource", tickets, durations, {})


def mixed_workload(
    count: int, rng: random.Random, resources: int = 20, groups: int = 4
) -> Workload:
    """Random resources (a few much more popular than the rest), some with limits,
    held exclusively or shared; random groups; a few tickets that run alone."""
    names = [f"resource-{n:02d}" for n in range(resources)]
    # Popularity falls off like 1/rank, so a few resources are contended.
    weights = [1 / (rank + 1) for rank in range(resources)]
    limits = {name: rng.randint(2, 8) for name in names if rng.random() < 0.25}
    tickets = []
    for index in range(count):
        held: dict[str, Access] = {}
        if rng.random() < 0.5:
            for name in rng.choices(names, weights, k=rng.randint(1, 3)):
                shared = rng.random() < (0.9 if name in limits else 0.6)
                held[name] = Access.SHARED if shared else Access.EXCLUSIVE
        group = f"group-{rng.randrange(groups)}" if rng.random() < 0.2 else None
        concurrent = rng.random() >= 0.0005
        tickets.append(Ticket(index, concurrent=concurrent, resources=held, group=group))
    durations = {t.index: _duration(rng) for t in tickets}
    return Workload(
        f"{resources} resources ({len(limits)} with limits), {groups} groups",
        tuple(tickets),
        durations,
        limits,
    )


WORKLOADS: dict[str, Callable[[int, random.Random], Workload]] = {
    "free": free_workload,
    "exclusive": one_exclusive_workload,
    "mixed": mixed_workload,
}

# --------------------------------------------------------------------------- the bound


def lower_bound(workload: Workload, max_in_flight: int) -> float:
    """A makespan no schedule can beat (see the module's docstring)."""
    durations = workload.durations
    alone = sum(durations[t.index] for t in workload.tickets if not t.concurrent)
    together = sum(durations[t.index] for t in workload.tickets if t.concurrent)
    bounds = [alone + together / max_in_flight, max(durations.values(), default=0.0)]
    exclusive: dict[str, float] = {}
    shared: dict[str, list[float]] = {}
    longest_in_group: dict[str, float] = {}
    for ticket in workload.tickets:
        seconds = durations[ticket.index]
        for name, access in ticket.resources.items():
            if access is Access.EXCLUSIVE:
                exclusive[name] = exclusive.get(name, 0.0) + seconds
            else:
                shared.setdefault(name, []).append(seconds)
        if ticket.group is not None:
            longest_in_group[ticket.group] = max(longest_in_group.get(ticket.group, 0.0), seconds)
    for name in exclusive.keys() | shared.keys():
        holds = shared.get(name, [])
        limit = workload.limits.get(name)
        spread = sum(holds) / limit if limit else max(holds, default=0.0)
        bounds.append(exclusive.get(name, 0.0) + spread)
    bounds.append(sum(longest_in_group.values()))
    return max(bounds)


# ------------------------------------------------------------------------ the simulation


@dataclass(frozen=True)
class Result:
    """One simulated run: CPU seconds spent in the policy, and the simulated times."""

    build_s: float
    admit_s: float
    finish_s: float
    slowest_call_s: float
    makespan_s: float
    peak_in_flight: int


def simulate(workload: Workload, max_in_flight: int) -> Result:
    """Drive the policy on a simulated clock until it is done.

    Raises:
        RuntimeError: if the policy stops admitting while tickets still wait.
    """
    cpu = time.process_time
    started = cpu()
    policy = AdmissionPolicy(workload.tickets, max_in_flight, workload.limits)
    build_s = cpu() - started
    admit_s = finish_s = slowest_s = 0.0
    peak = 0
    now = 0.0
    ending: list[tuple[float, int, Ticket]] = []
    while True:
        started = cpu()
        admitted = policy.admit()
        spent = cpu() - started
        admit_s += spent
        slowest_s = max(slowest_s, spent)
        for ticket in admitted:
            heapq.heappush(ending, (now + workload.durations[ticket.index], ticket.index, ticket))
        peak = max(peak, len(ending))
        if not ending:
            break
        now, _, ticket = heapq.heappop(ending)
        started = cpu()
        policy.finish(ticket)
        spent = cpu() - started
        finish_s += spent
        slowest_s = max(slowest_s, spent)
    if not policy.done or policy.waiting:
        raise RuntimeError(f"{len(policy.waiting)} tickets were never admitted")
    return Result(build_s, admit_s, finish_s, slowest_s, now, peak)


# ------------------------------------------------------------------------------ report

TABLE_HEADER = [
    "| workload | tickets | build (ms) | admit (ms) | finish (ms) | per ticket (µs) "
    "| slowest call (ms) | makespan (s) | lower bound (s) | makespan / bound | peak in flight |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def table_row(workload: Workload, result: Result, bound: float) -> str:
    """One markdown row."""
    policy_s = result.admit_s + result.finish_s
    cells = [
        workload.name,
        f"{len(workload.tickets):,}",
        f"{result.build_s * 1e3:,.0f}",
        f"{result.admit_s * 1e3:,.0f}",
        f"{result.finish_s * 1e3:,.0f}",
        f"{policy_s / max(1, len(workload.tickets)) * 1e6:,.1f}",
        f"{result.slowest_call_s * 1e3:,.2f}",
        f"{result.makespan_s:,.1f}",
        f"{bound:,.1f}",
        f"{result.makespan_s / bound:.3f}" if bound else "—",
        f"{result.peak_in_flight:,}",
    ]
    return "| " + " | ".join(cells) + " |"


def _names(value: str, known: Iterable[str]) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown workload: {', '.join(unknown)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "--workloads",
        type=lambda v: _names(v, WORKLOADS),
        default=list(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets per workload")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="max_in_flight, as --concurrency"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random workloads")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.concurrency < 1:
        parser.error("--tickets and --concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: simulate every workload and print the table."""
    args = parse_args(argv)
    lines = [
        "## Admission policy on a simulated clock",
        "",
        f"Python {sys.version.split()[0]} on {sys.platform}; {args.tickets:,} tickets per "
        f"workload; max_in_flight {args.concurrency}; seed {args.seed}. Times in ms and µs "
        "are CPU time; makespans are simulated seconds.",
        "",
        *TABLE_HEADER,
    ]
    for name in args.workloads:
        workload = WORKLOADS[name](args.tickets, random.Random(f"{args.seed}/{name}"))
        result = simulate(workload, args.concurrency)
        lines.append(table_row(workload, result, lower_bound(workload, args.concurrency)))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
