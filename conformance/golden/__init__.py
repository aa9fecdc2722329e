"""Golden cases: a fixed, versioned set of cases per component and the reference's answers to them.

The property suite draws fresh cases and compares implementations with each
other; the golden set pins the numbers down over time. For every component
discovered by `conformance.components` and every seed in SEEDS, the
component's `golden_case(seed)` is stored with the reference's outputs, state
and gradients, in float64 and float32, in `conformance/golden/`:

    manifest.json     format version; per component: the package and NumPy versions that
                      generated it, and per case its spec, mode, seed, metadata, variants
    <component>.npz   the arrays, under "<case>/params/<k>", "<case>/inputs/<k>",
                      "<case>/state/<k>", "<case>/cotangents/<set>/<output>" and
                      "<case>/reference/<variant>/<dtype>/{outputs,state}/<k>",
                      "<case>/reference/<variant>/<dtype>/grads/<set>/<k>"

Cotangent sets: "upstream" = {"Y": dY} where the case carries dY (else a
random cotangent on each declared output, drawn from the case's seed), and
"loss" = {"loss": 1} where the component has a loss; a set for which the
reference returns no gradient (nothing is differentiated) is not stored.

Conventions. Each framework's adapter fixes some spec fields (CONVENTIONS; see
checks.under_conventions), so the reference is compared with a framework under
that framework's convention. The golden set stores the reference's answers per
convention *variant*: "default" (the golden spec as drawn) and one variant per
distinct set of fields that some framework changes, labelled by those fields
("leaky_kink=one"), stored with those fields. The manifest names no framework: a
variant is a set of spec values, whichever framework asks for it.
The property "golden-agreement" recomputes the variant label from the spec it
is given (the golden spec under the framework's conventions) and compares with
that variant's stored values, so every variant is checked against stored data,
never against a fresh recomputation. Regeneration recomputes every stored variant
from its fields (so the check needs no framework installed) and adds the variants of
the frameworks installed: a new framework's variants are additions, written by
`python -m conformance golden --write`.

Tolerances. A framework (and the reference's own float32 run, the numpy
float32 row) is held to the suite's table (conformance.tolerances): the
component's rounding bound on the golden case, per entry. The reference in float64
(the numpy float64 row) must reproduce its stored values far more tightly: the same
code on the same numbers differs only by BLAS kernels and summation order, i.e.
by about the float64 rounding estimate e32 · ε64/ε32, e32 the stored float32
reference's difference; REPRODUCE_FACTOR times that, plus REPRODUCE_FLOOR ulps of
the tensor's largest entry, is allowed. A
change of one part in 10⁹ to any stored entry above ~10⁻⁶ of its tensor's
largest fails (tests/test_golden.py changes one and watches it fail).

Regeneration (`command`, `python -m conformance golden`) draws every case
again and compares: drawn data (spec, parameters, inputs, cotangents) must be
identical bit for bit, reference values must pass the checks above. New
components and new seeds are written by `--write`; changed or removed values
only with `--write --force`. The manifest's format_version guards the layout.

The package: `storage` (the files: manifest, arrays, cases), `property` (the
property "golden-agreement"), `regenerate` (drawing the cases again, comparing,
writing: `python -m conformance golden`).
"""
