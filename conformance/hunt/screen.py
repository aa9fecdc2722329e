"""The screening comparison: every member of a population at once, against the reference.

For each group of results (outputs, gradients under dY, gradients of the loss, running
statistics) and each tensor, member p's error ratio is max |a_p - r64_p| / allowed_p with
allowed_p the table's sampled bound (`conformance.tolerances.sampled_bound`: the largest
difference of member p's own float32 reference from its float64 one, times
SAMPLED_FACTOR, plus SAMPLED_ULPS ulps of the tensor's largest entry, plus the floor).
A NaN or inf where the reference has a finite value (or the other special) counts as
infinitely wrong. A group's tensors are flattened side by side, so the whole comparison
is a few array operations per group, whatever the number of tensors.

The screen only chooses which cases to look at; it is not the bound a finding is held
to. The table's bound is per entry (each component's rounding module, conformance.bounds),
too costly to compute for every member of every population; the per-tensor estimate here
is cheap. A member is a suspect above half of it (SCREEN_MARGIN), and nothing it flags is
reported until `conformance.hunt.confirm` runs the property on that member alone, under
the per-entry bound, and the failure is arbitrated as a disagreement: a screen tighter
than the table costs confirmations, never a finding. Measured on the three smallest
buckets of mlp, mlp_bn and rnn (6 members each, the gradients under dY): SCREEN_MARGIN
times the screen's allowance over the table's bound of the tensor's largest entry has a
median of 0.2 to 2.6 and a range of 0.007 to 5.7, so the screen is tighter on some
tensors (a confirmation in vain) and up to 5.7 times looser on others, and looser still
for a wrong value in entries far below the tensor's largest: such a fault the fast lane
may pass, and the property lane, which draws each check's own cases through
`run_property`, still looks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conformance.hunt.reference import Results
from conformance.tolerances import FLOOR, PRECISIONS, SAMPLED_FACTOR, SAMPLED_ULPS

SCREEN_MARGIN = 0.5
PROPERTY_OF_GROUP = {
    "forward": "forward-agreement",
    "gradient": "gradient-agreement",
    "loss-gradient": "loss-gradient-agreement",
    "state": "state-agreement",
}


@dataclass(frozen=True)
class Suspect:
    member: int
    group: str  # which comparison: "forward", "gradient", "loss-gradient", "state"
    parameter: str
    ratio: float  # of the full tolerance

    @property
    def property(self) -> str:
        """The suite's property that checks this group, which confirms the suspect."""
        return PROPERTY_OF_GROUP[self.group]


class Expected:
    """One population's reference results, flattened per group, with what the bound needs."""

    def __init__(self, r64: Results, r32: Results) -> None:
        self.groups: dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for group, arrays in r64.items():
            names = [k for k, v in arrays.items() if v[0].size]
            if not names:
                continue
            P = arrays[names[0]].shape[0]
            flat = [arrays[k].reshape(P, -1) for k in names]
            starts = np.cumsum([0] + [f.shape[1] for f in flat[:-1]])
            e = np.concatenate(flat, axis=1)
            e32 = np.concatenate([r32[group][k].reshape(P, -1) for k in names], axis=1)
            with np.errstate(invalid="ignore"):
                scale = np.maximum.reduceat(np.abs(e), starts, axis=1)  # (P, tensors)
                err32 = np.maximum.reduceat(np.abs(e32 - e), starts, axis=1)
            self.groups[group] = (names, starts, e, scale, err32)

    def ratios(self, group: str, actual: dict[str, np.ndarray], dtype: str) -> np.ndarray:
        """(P, tensors): member p's worst |a - r64| / allowed in each tensor of the group."""
        names, starts, e, scale, err32 = self.groups[group]
        row, u32 = PRECISIONS[dtype], PRECISIONS["float32"].unit_roundoff
        P = e.shape[0]
        a = np.concatenate([actual[k].reshape(P, -1) for k in names], axis=1)
        with np.errstate(invalid="ignore"):
            bound = SAMPLED_FACTOR * (row.unit_roundoff / u32) * err32 + SAMPLED_ULPS * row.eps * scale
        allowed = np.where(np.isfinite(bound), bound, 0.0) + FLOOR * row.smallest_normal
        widths = np.diff(np.append(starts, e.shape[1]))
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - e) / np.repeat(allowed, widths, axis=1)
            if not (np.isfinite(a).all() and np.isfinite(e).all()):
                same = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
                diff = np.where(same, 0.0, np.where(np.isfinite(diff), diff, np.inf))
        return np.maximum.reduceat(diff, starts, axis=1)


def screen(actual: Results, expected: Expected, dtype: str) -> list[Suspect]:
    """The members whose results in some group are off by more than SCREEN_MARGIN tolerances
    (one suspect per member and group: its worst tensor)."""
    suspects = []
    for group, (names, *_) in expected.groups.items():
        if group not in actual:
            continue
        r = expected.ratios(group, actual[group], dtype)
        for member in np.flatnonzero(~(np.max(r, axis=1) <= SCREEN_MARGIN)):
            worst = int(np.argmax(np.where(np.isnan(r[member]), np.inf, r[member])))
            suspects.append(Suspect(int(member), group, names[worst], float(r[member, worst])))
    return sorted(suspects, key=lambda s: (s.member, s.group))
