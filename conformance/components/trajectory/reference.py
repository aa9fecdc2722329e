"""Trajectories' spec and reference runner: several SGD steps with clipping, refimpl.train
answering the contract.

A case holds the initial parameters (case.params) and state (case.state: the
batch-norm running statistics of an MLP with spec.batchnorm), the batches of every step
stacked on a leading step axis S (case.inputs: "X" (S, N, D) and "targets" for
an MLP; "X" (S, T, N, D), "h0" (S, N, H) and "targets" for an RNN). Every step
runs in training mode. Nothing is differentiated; the outputs are

    "loss"        (S,)  L_t of every step, before its update
    "norm"        (S,)  the pre-clip global norm of every step (clip_kind "global_norm" only)
    "final/<k>"         the parameters after the last step

and Outcome.state the final state. One spec field per convention the frameworks
differ on, so the reference runs under each framework's own (CONVENTIONS):
the clipping convention (refimpl.clip), the MLP's leaky_relu'(0) and batch-norm
running statistics (refimpl.batchnorm), and the RNN's
biases: torch's nn.RNN trains b_ih and b_hh, flax's SimpleCell one bias
b = b_ih + b_hh, which the reference trains as b_hh frozen (refimpl.train).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from refimpl._validate import SPEC_DTYPES, describe, require_choice
from refimpl.clip import TORCH_EPS, ClipSpec
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec
from refimpl.train import SGDSpec, mlp_objective, rnn_objective, train

CLIP_KINDS = ("global_norm", "value", "none")
MLP_CONVENTIONS = (
    "leaky_kink",
    "bn_momentum",
    "bn_momentum_convention",
    "bn_running_var",
    "bn_eps",
    "bn_single_example",
)
RNN_BIASES = ("two", "one")
NETWORKS: dict[str, Any] = {"mlp": MLPSpec, "rnn": RNNSpec}


@dataclass(frozen=True)
class TrajectorySpec:
    """A network, plain SGD and its clipping; serializes to JSON for replay."""

    network: MLPSpec | RNNSpec  # its dtype and conventions are overridden by the fields below
    lr: float = 0.1  # η
    clip_kind: str = "global_norm"  # "global_norm" (max_norm), "value" (clip_value) or "none"
    max_norm: float | None = 1.0
    clip_value: float | None = None
    norm_type: float = 2.0  # 2.0 or inf (torch only)
    convention: str = "torch"  # clipping: "torch" (clip_grad_norm_) or "optax" (clip_by_global_norm)
    eps: float = TORCH_EPS  # torch's clipping epsilon
    rnn_biases: str = "two"  # "two" (torch nn.RNN) or "one" (flax SimpleCell: b_hh frozen)
    # The MLP's conventions (refimpl.mlp.MLPSpec fields of the same names), set by each framework's
    # CONVENTIONS; None keeps the network's own. leaky_relu'(0): "slope" (torch), "one" (jax);
    # batch norm: momentum 0.1/0.99, "torch"/"flax" update, "unbiased"/"biased" running variance.
    leaky_kink: str | None = None
    bn_momentum: float | None = None
    bn_momentum_convention: str | None = None
    bn_running_var: str | None = None
    bn_eps: float | None = None
    bn_single_example: str | None = None
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if not isinstance(self.network, MLPSpec | RNNSpec):
            raise TypeError(f"network: expected an MLPSpec or RNNSpec, received {describe(self.network)}")
        require_choice("clip_kind", self.clip_kind, CLIP_KINDS)
        require_choice("rnn_biases", self.rnn_biases, RNN_BIASES)
        require_choice("dtype", self.dtype, SPEC_DTYPES)
        self.sgd()  # validates lr and every clipping field, naming it
        self.network_spec()  # validates the MLP convention overrides (MLPSpec names the field)

    @property
    def model(self) -> str:
        return "mlp" if isinstance(self.network, MLPSpec) else "rnn"

    def network_spec(self) -> MLPSpec | RNNSpec:
        """The network in this dtype, under this spec's conventions."""
        if isinstance(self.network, RNNSpec):
            return replace(self.network, dtype=self.dtype)
        fixed = {k: getattr(self, k) for k in MLP_CONVENTIONS if getattr(self, k) is not None}
        return replace(self.network, dtype=self.dtype, **fixed)

    def clip_spec(self) -> ClipSpec | None:
        if self.clip_kind == "none":
            return None
        return ClipSpec(
            self.clip_kind, self.max_norm, self.clip_value, self.norm_type, self.convention, self.eps
        )

    def sgd(self) -> SGDSpec:
        frozen = ("b_hh",) if self.model == "rnn" and self.rnn_biases == "one" else ()
        return SGDSpec(self.lr, self.clip_spec(), frozen)

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "network"}
        data["norm_type"] = "inf" if math.isinf(self.norm_type) else self.norm_type
        data.update(model=self.model, network=json.loads(self.network.to_json()))
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrajectorySpec:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("model") not in NETWORKS:
            raise ValueError(f"spec: expected a JSON object with model in {sorted(NETWORKS)}, got {text}")
        network = NETWORKS[data.pop("model")].from_json(json.dumps(data.pop("network")))
        if data.get("norm_type") == "inf":
            data["norm_type"] = math.inf
        return cls(network=network, **data)


def batches(case: Case) -> list[Arrays]:
    """The per-step batches: every input sliced along its leading step axis."""
    steps = next(iter(case.inputs.values())).shape[0]
    return [{k: v[t] for k, v in case.inputs.items()} for t in range(steps)]


def trajectory_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.train over every step, in case.spec.dtype; no gradients (nothing is differentiated)."""
    spec: TrajectorySpec = case.spec
    network = spec.network_spec()
    objective = mlp_objective(network) if isinstance(network, MLPSpec) else rnn_objective(network)
    params = cast_floats(case.params, spec.dtype)
    state = cast_floats(case.state, spec.dtype)
    steps = [cast_floats(b, spec.dtype) for b in batches(case)]
    final, new_state, infos = train(objective, spec.sgd(), params, state, steps)
    outputs: dict[str, Any] = {"loss": np.array([i.loss for i in infos])}
    if spec.clip_kind == "global_norm":
        outputs["norm"] = np.array([i.norm for i in infos])
    outputs.update({f"final/{k}": v for k, v in final.items()})
    return Outcome(as_float64(outputs), {}, as_float64(new_state))
