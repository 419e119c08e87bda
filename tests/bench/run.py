"""Runs every tests/bench/bench_*.py module and writes docs/benchmarks.md.

Each module defines `run(report: Report) -> None` and calls `report.add(...)` per measurement.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "benchmarks.md"


@dataclass
class Result:
    group: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    group: str = ""

    def add(self, name: str, value: float, unit: str, *, target: str = "",
            met: bool | None = None, note: str = "") -> None:
        self.results.append(Result(self.group, name, value, unit, target, met, note))
        print(f"  {name}: {value:.3f} {unit} {('(target ' + target + ')') if target else ''}",
              flush=True)


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False)
    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}; {pg.stdout.strip() or 'psql not found'}")


def commit() -> str:
    """The commit measured (with "+changes" when the working tree differs from it)."""
    git = ["git", "-C", str(Path(__file__).resolve().parents[2])]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,  # nosec
                          text=True, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],  # nosec
                           capture_output=True, text=True, check=False).stdout.strip()
    return head + ("+changes" if dirty else "")


def main(argv: list[str]) -> int:
    wanted = set(argv)
    load_before = os.getloadavg()[0]
    report = Report()
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in modules:
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"{name}:", flush=True)
        module = importlib.import_module(f"tests.bench.{name}")
        report.group = (module.__doc__ or name).strip().splitlines()[0]
        module.run(report)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.bench.run`); do not edit by hand.",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {_machine()}; commit {commit()}",
        f"- Load average before/after the run: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
        "(other work on the machine inflates the timings)",
        "",
    ]
    group = None
    for r in report.results:
        if r.group != group:
            group = r.group
            lines += ["", f"## {group}", "", "| Measurement | Result | Target | Met | Note |",
                      "|---|---|---|---|---|"]
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.name} | {r.value:,.3f} {r.unit} | {r.target} | {met} | {r.note} |")
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0 if all(r.met is not False for r in report.results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
