"""Hand-derived backpropagation in NumPy: the reference the conformance suite checks against.

NumPy only: this package never imports torch or jax.
"""

from refimpl.mlp import MLPSpec, init_params, loss_and_grads, mlp_backward, mlp_forward

__all__ = ["MLPSpec", "init_params", "loss_and_grads", "mlp_backward", "mlp_forward"]
