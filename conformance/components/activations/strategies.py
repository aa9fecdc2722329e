"""Hypothesis strategies for the components "mlp_<activation>", one per activation of refimpl.smooth.

Each draws MLPs whose hidden layers use that activation (and, when the network has no hidden
layer, its output layer), as the MLP component draws its cases (conformance/components/mlp):
parameters by torch's init from a seed, X ~ N(0, 1), targets and two upstream gradients.

ci: one spec per activation (CATALOG: the activation in the hidden and the output layer; ELU with
α = 1.5, where its two sides' slopes at 0 differ; softplus with β = 2), CI_BATCH rows, so each
framework compiles one program per dtype and mode. dev, thorough, hunt: free specs, depth 1-4,
either loss, α, β and the threshold drawn, any output activation but tanh, the "mlp" component's
(where a framework plugin's known issue, tanh computed in float32 inside a float64 network, lives).

Edges, in every profile:
* kinks (elu, selu): every bias 0 and every other row of X 0, so those rows reach every layer
  with a pre-activation of exactly 0 (f(0) = 0 keeps them there);
* threshold (softplus): every other row of X 0 and the first layer's bias cycling through
  EDGES(β) = t/β, the next float above it, t and the next float above (t = 20, torch's threshold;
  β the spec's, and 1, jax's), so Z¹ = b¹ sits exactly at and just past each framework's switch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from conformance.case import Case
from conformance.components.mlp.strategies import mlp_case, mlp_specs
from conformance.profiles import Profile
from conformance.strategies import catalog_or, seeds
from refimpl.activations import ACTIVATIONS
from refimpl.mlp import MLPSpec

CATALOG = {
    "gelu": MLPSpec((3, 6, 4), "gelu", "gelu", "mse"),
    "gelu_tanh": MLPSpec((3, 6, 4), "gelu_tanh", "gelu_tanh", "mse"),
    "elu": MLPSpec((3, 6, 4), "elu", "elu", "mse", elu_alpha=1.5),
    "selu": MLPSpec((3, 6, 4), "selu", "selu", "mse"),
    "silu": MLPSpec((3, 6, 4), "silu", "silu", "mse"),
    "softplus": MLPSpec((3, 6, 4), "softplus", "softplus", "mse", softplus_beta=2.0),
}
CI_BATCH = 6
THRESHOLD = 20.0  # torch's F.softplus default
OUTPUTS = tuple(a for a in ACTIVATIONS if a != "tanh")


def component_name(activation: str) -> str:
    return f"mlp_{activation}"


def edges(beta: float) -> np.ndarray:
    """Pre-activations at and just past βz = THRESHOLD, for the spec's β and for β = 1."""
    points = [THRESHOLD / beta, THRESHOLD]
    return np.array([x for p in points for x in (p, np.nextafter(p, np.inf))])


def free_specs(activation: str) -> st.SearchStrategy[MLPSpec]:
    """Depth 1-4, the activation in every hidden layer, any output activation (the activation
    itself when there is no hidden layer)."""

    def hidden_is(spec: MLPSpec, output: str) -> MLPSpec:
        return replace(spec, output_activation=output if len(spec.sizes) > 2 else activation)

    specs = mlp_specs(max_depth=4, activations=(activation,))
    return st.builds(hidden_is, specs, st.sampled_from(OUTPUTS))


def activation_case(
    spec: MLPSpec, batch: int, seed: int, *, kinks: bool = False, threshold: bool = False
) -> Case:
    """mlp_case for the component of spec.hidden_activation, with the edges above if asked."""
    case = mlp_case(spec, batch, seed, kinks=kinks)
    if threshold:
        case.inputs["X"][::2] = 0.0
        width = spec.sizes[1]
        case.params["b1"] = np.resize(edges(spec.softplus_beta), width)
    return replace(case, component=component_name(spec.hidden_activation))


@st.composite
def activation_cases(
    draw: st.DrawFn, profile: Profile, *, activation: str, kinks: bool = False, threshold: bool = False
) -> Case:
    spec = draw(catalog_or(profile, (CATALOG[activation],), free_specs(activation)))
    batch = CI_BATCH if profile.bounded_shapes else draw(st.sampled_from((1, 2, 3, 4, 8, 16)))
    return activation_case(spec, batch, draw(seeds()), kinks=kinks, threshold=threshold)
