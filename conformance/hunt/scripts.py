"""Standalone scripts: one file a framework developer runs with only NumPy and the framework.

The script holds the minimized case's numbers (exact: every float written by its shortest
round-tripping repr), the framework code that computes the quantity in question
(`script_templates`: the adapter's computation, written out with the framework's public
API), the expected values (the float64 reference of this project, computed here once)
and the allowed error of every entry (the tolerance table's per-entry bound for this case
and dtype, `conformance.bounds`: the same bound `run_property` confirmed the finding
under). It prints, per tensor, the worst element against its bound, both values and the
bound, and exits 1 while some entry is beyond its bound, 0 once the framework agrees.

What the script checks follows the property: outputs (forward-agreement and the batch-norm
forward properties), the running statistics after the step (state-agreement), the loss
gradient (loss-gradient-agreement), else every gradient under the case's random upstream
gradient dY (gradient-agreement, kink-convention, eval-agreement, and the identities,
which a wrong gradient breaks). Components without a template (clipping, trajectories)
get no script; their `case.npz` replays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from conformance import frameworks, registry
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.hunt.findings import Finding
from conformance.hunt.script_templates import FAMILY, TEMPLATES
from conformance.runner import under_conventions
from conformance.tolerances import allowed_error

FORWARD = {"forward-agreement", "bn-ill-conditioned", "bn-ill-conditioned-two-pass"}
VARIANCE = {
    "bn-ill-conditioned": "default",
    "bn-ill-conditioned-two-pass": "two-pass",
}  # as the properties set it


def quantity(property_id: str) -> str:
    if property_id in FORWARD:
        return "forward"
    return {"state-agreement": "state", "loss-gradient-agreement": "loss-gradient"}.get(
        property_id, "gradient"
    )


def expected_values(case: Case, what: str, dtype: str) -> tuple[Arrays, Arrays]:
    """The float64 reference's values of `what` and each entry's allowed error in `dtype`."""
    component = registry.component(case.component)
    cot = {"forward": None, "state": None, "loss-gradient": {"loss": np.ones(())}}.get(
        what, {"Y": case.inputs["dY"]}
    )
    r64, bound = reference_and_bound(component, case.with_dtype(dtype), cot)
    pick = {"forward": 0, "state": 2}.get(what, 1)
    e64, b = r64[pick], bound[pick]
    if what == "forward":  # with the running statistics the step leaves, as the forward properties
        e64, b = {**e64, **r64.state}, {**b, **bound.state}
    e64 = {k: v for k, v in e64.items() if not k.startswith("Z")}  # δˡ: no public handle in a script
    allowed = {k: allowed_error(dtype, np.broadcast_to(b[k], v.shape)).total for k, v in e64.items()}
    return e64, allowed


def literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iu":
            return f"np.array({value.tolist()!r}, dtype=np.int64)"
        flat = ", ".join(repr(float(x)) for x in value.reshape(-1))
        return f"np.array([{flat}], dtype=np.float64).reshape({tuple(value.shape)!r})"
    return repr(value)


def _arrays(name: str, arrays: Arrays, cast: str | None) -> str:
    body = ",\n".join(
        f"    {k!r}: {literal(v)}" + (f".astype({cast!r})" if cast and v.dtype.kind == "f" else "")
        for k, v in arrays.items()
    )
    return f"{name} = {{\n{body}\n}}\n" if arrays else f"{name} = {{}}\n"


COMPARE = """

def main():
    actual = compute()
    failed = 0
    for name, expected in EXPECTED.items():
        got = np.asarray(actual[name], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isnan(got) & np.isnan(expected), 0.0, np.abs(got - expected))
        diff = np.where(np.isnan(diff), np.inf, diff)
        allowed = ALLOWED[name]
        worst = np.unravel_index(int(np.argmax(diff / allowed)), diff.shape) if diff.size else ()
        bad = bool(diff.size) and not diff[worst] <= allowed[worst]
        failed += bad
        where = list(map(int, worst))
        print(f"{'WRONG' if bad else 'ok   '} {name}{where}: {FRAMEWORK} = {float(got[worst])!r},"
              f" expected {float(expected[worst])!r}; |difference| = {float(diff[worst]):.3g},"
              f" allowed {float(allowed[worst]):.3g}" if diff.size else f"ok    {name}: empty")
    print(f"{failed} of {len(EXPECTED)} tensors disagree" if failed else "every tensor agrees")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
"""


def script(finding: Finding) -> str | None:
    case = finding.case
    if case is None or (FAMILY.get(case.component), finding.framework) not in TEMPLATES:
        return None
    backend = frameworks.backend(finding.framework)
    case = under_conventions(case, backend)
    what = quantity(finding.property)
    expected, allowed = expected_values(case, what, finding.dtype)
    spec = json.loads(case.spec.to_json())
    variance = VARIANCE.get(finding.property, case.meta.get("bn_variance", "two-pass"))
    fast = {"two-pass": False, "fast": True}.get(variance)  # None: flax's own default
    header = (
        f'"""{finding.title()}.\n\nFound by the backprop-conformance hunt; signature:\n'
        f"  {finding.signature()}\n\nExpected: that project's float64 NumPy reference (backpropagation"
        f" derived by hand);\nallowed: its tolerance for {finding.dtype} on this case. Needs only NumPy and"
        f' {finding.framework}.\nExit status 1 while some tensor disagrees, 0 once every one agrees.\n"""\n'
    )
    constants = [
        "import sys\n\nimport numpy as np\n",
        f"FRAMEWORK = {finding.framework!r}  # {finding.version}",
        f"DTYPE = {finding.dtype!r}",
        f"QUANTITY = {what!r}  # property {finding.property}",
        f"TRAIN = {case.train!r}",
        f"FAST_VARIANCE = {fast!r}  # flax BatchNorm's use_fast_variance (None: its default)",
        f"SPEC = {spec!r}\n",
        _arrays("PARAMS", case.params, finding.dtype),
        _arrays("INPUTS", case.inputs, finding.dtype),
        _arrays("STATE", case.state, finding.dtype),
        _arrays("EXPECTED", expected, None),
        _arrays("ALLOWED", allowed, None),
    ]
    return header + "\n".join(constants) + TEMPLATES[(FAMILY[case.component], finding.framework)] + COMPARE


def write_script(path: Path, finding: Finding) -> bool:
    text = script(finding)
    if text is None:
        return False
    path.write_text(text)
    return True
