"""The ratios `make bench` sums up at its end: each benchmark reports the ratios of the throughput
issue's table (docs/benchmarks.md) with `report`, and `python -m bench` collects the lines.

A line reads `ratio: <label> = <value> (goal <goal>)`; `goal` is written as the table writes it
("≥ 0.8", "≤ 3", "< 110 MiB").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "ratio: "
LINE = re.compile(r"ratio: (?P<label>.+) = (?P<value>\S+) \(goal (?P<goal>[^)]*)\)")
GOAL = re.compile(r"(?P<op>≥|≤|<|>)\s*(?P<bound>[0-9.]+)")


@dataclass(frozen=True)
class Ratio:
    label: str
    value: float
    goal: str

    @property
    def met(self) -> bool | None:
        found = GOAL.match(self.goal)
        if found is None:
            return None
        bound = float(found["bound"])
        return {
            "≥": self.value >= bound,
            "≤": self.value <= bound,
            "<": self.value < bound,
            ">": self.value > bound,
        }[found["op"]]


def report(label: str, value: float, goal: str) -> None:
    """Prints one ratio of the table, for `python -m bench` to collect."""
    print(f"{PREFIX}{label} = {value:.3g} (goal {goal})", flush=True)


def parse(line: str) -> Ratio | None:
    found = LINE.fullmatch(line.strip())
    if found is None:
        return None
    try:
        value = float(found["value"])
    except ValueError:
        return None
    return Ratio(found["label"], value, found["goal"])
