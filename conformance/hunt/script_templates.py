"""The framework code of the standalone scripts (`conformance.hunt.scripts`), one per family
and framework: the adapters' computation written out with the framework's public API only.

Each template defines `compute()`, which returns the quantity the script checks by name:
"Y", "loss", the gradients ("W1", ..., "X", "h0") or the running statistics, as NumPy
arrays. It reads the module constants the script defines before it: SPEC (the spec's
fields), PARAMS, INPUTS, STATE, TRAIN, DTYPE, QUANTITY ("forward", "gradient",
"loss-gradient" or "state") and, for flax's batch norm, FAST_VARIANCE.
"""

TORCH_MLP = """
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)


def activation(name, Z):
    return {"identity": lambda: Z, "sigmoid": lambda: torch.sigmoid(Z), "tanh": lambda: torch.tanh(Z),
            "relu": lambda: F.relu(Z),
            "leaky_relu": lambda: F.leaky_relu(Z, negative_slope=SPEC["slope"])}[name]()


def compute():
    dtype = getattr(torch, DTYPE)
    sizes, bn = SPEC["sizes"], SPEC.get("batchnorm", False)
    L = len(sizes) - 1
    layers = [nn.Linear(sizes[l - 1], sizes[l], bias=not (bn and l < L), dtype=dtype)
              for l in range(1, L + 1)]
    norms = [nn.BatchNorm1d(sizes[l], eps=SPEC["bn_eps"], momentum=SPEC["bn_momentum"], dtype=dtype)
             for l in range(1, L)] if bn else []
    t = {k: torch.from_numpy(v) for k, v in {**PARAMS, **INPUTS, **STATE}.items()}
    with torch.no_grad():
        for l, layer in enumerate(layers, 1):
            layer.weight.copy_(t[f"W{l}"])
            if layer.bias is not None:
                layer.bias.copy_(t[f"b{l}"])
        for l, norm in enumerate(norms, 1):
            norm.weight.copy_(t[f"gamma{l}"])
            norm.bias.copy_(t[f"beta{l}"])
            norm.running_mean.copy_(t[f"running_mean{l}"])
            norm.running_var.copy_(t[f"running_var{l}"])
            norm.train(TRAIN)
    X = t["X"].clone().requires_grad_(True)
    A = X
    for l, layer in enumerate(layers, 1):
        Z = layer(A)
        if l < L and bn:
            Z = norms[l - 1](Z)
        A = activation(SPEC["hidden_activation"] if l < L else SPEC["output_activation"], Z)
    Y = A
    loss = F.mse_loss(Y, t["targets"]) if SPEC["loss"] == "mse" else F.cross_entropy(Y, t["targets"])
    state = {f"{s}{l}": getattr(norm, s).numpy() for l, norm in enumerate(norms, 1)
             for s in ("running_mean", "running_var")}
    if QUANTITY == "forward":
        return {"Y": Y.detach().numpy(), "loss": loss.detach().numpy(), **state}
    if QUANTITY == "state":
        return state
    objective = (Y * t["dY"]).sum() if QUANTITY == "gradient" else loss
    wrt = {}
    for l, layer in enumerate(layers, 1):
        wrt[f"W{l}"] = layer.weight
        if layer.bias is not None:
            wrt[f"b{l}"] = layer.bias
        if l < L and bn:
            wrt[f"gamma{l}"], wrt[f"beta{l}"] = norms[l - 1].weight, norms[l - 1].bias
    wrt["X"] = X
    grads = torch.autograd.grad(objective, list(wrt.values()))
    return {k: g.numpy() for k, g in zip(wrt, grads)}
"""

JAX_MLP = """
import jax

jax.config.update("jax_enable_x64", True)
import flax.linen as nn
import jax.numpy as jnp
import optax

ACTIVATIONS = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu,
               "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=SPEC["slope"])}


class Net(nn.Module):
    @nn.compact
    def __call__(self, X):
        sizes, bn = SPEC["sizes"], SPEC.get("batchnorm", False)
        L = len(sizes) - 1
        for l in range(1, L + 1):
            Z = nn.Dense(sizes[l], use_bias=not (bn and l < L), dtype=jnp.dtype(DTYPE),
                         param_dtype=jnp.dtype(DTYPE), name=f"Dense_{l}")(X)
            if l < L and bn:
                variance = {} if FAST_VARIANCE is None else {"use_fast_variance": FAST_VARIANCE}
                Z = nn.BatchNorm(use_running_average=not TRAIN, momentum=SPEC["bn_momentum"],
                                 epsilon=SPEC["bn_eps"], dtype=jnp.dtype(DTYPE), param_dtype=jnp.dtype(DTYPE),
                                 name=f"BatchNorm_{l}", **variance)(Z)
            X = ACTIVATIONS[SPEC["hidden_activation"] if l < L else SPEC["output_activation"]](Z)
        return X


def compute():
    sizes, bn = SPEC["sizes"], SPEC.get("batchnorm", False)
    L = len(sizes) - 1
    params, stats = {}, {}
    for l in range(1, L + 1):
        params[f"Dense_{l}"] = {"kernel": jnp.asarray(PARAMS[f"W{l}"].T)}
        if f"b{l}" in PARAMS:
            params[f"Dense_{l}"]["bias"] = jnp.asarray(PARAMS[f"b{l}"])
        if l < L and bn:
            params[f"BatchNorm_{l}"] = {"scale": jnp.asarray(PARAMS[f"gamma{l}"]),
                                        "bias": jnp.asarray(PARAMS[f"beta{l}"])}
            stats[f"BatchNorm_{l}"] = {"mean": jnp.asarray(STATE[f"running_mean{l}"]),
                                       "var": jnp.asarray(STATE[f"running_var{l}"])}
    targets = jnp.asarray(INPUTS["targets"])

    def f(params, X):
        variables = {"params": params, "batch_stats": stats} if bn else {"params": params}
        if bn and TRAIN:
            Y, updates = Net().apply(variables, X, mutable=["batch_stats"])
            new_stats = updates["batch_stats"]
        else:
            Y, new_stats = Net().apply(variables, X), stats
        if SPEC["loss"] == "mse":
            loss = optax.squared_error(Y, targets).mean()
        else:
            loss = optax.softmax_cross_entropy_with_integer_labels(Y, targets).mean()
        return (Y, loss), new_stats

    (Y, loss), pullback, new_stats = jax.vjp(f, params, jnp.asarray(INPUTS["X"]), has_aux=True)
    state = {f"{s}{l[len('BatchNorm_'):]}": np.asarray(v[key]) for l, v in new_stats.items()
             for s, key in (("running_mean", "mean"), ("running_var", "var"))}
    if QUANTITY == "forward":
        return {"Y": np.asarray(Y), "loss": np.asarray(loss), **state}
    if QUANTITY == "state":
        return state
    if QUANTITY == "gradient":
        g, dX = pullback((jnp.asarray(INPUTS["dY"]), jnp.zeros_like(loss)))
    else:
        g, dX = pullback((jnp.zeros_like(Y), jnp.ones_like(loss)))
    grads = {}
    for l in range(1, L + 1):
        grads[f"W{l}"] = np.asarray(g[f"Dense_{l}"]["kernel"]).T
        if "bias" in g[f"Dense_{l}"]:
            grads[f"b{l}"] = np.asarray(g[f"Dense_{l}"]["bias"])
        if f"BatchNorm_{l}" in g:
            grads[f"gamma{l}"] = np.asarray(g[f"BatchNorm_{l}"]["scale"])
            grads[f"beta{l}"] = np.asarray(g[f"BatchNorm_{l}"]["bias"])
    grads["X"] = np.asarray(dX)
    return grads
"""

TORCH_RNN = """
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)
NAMES = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def compute():
    dtype = getattr(torch, DTYPE)
    D, H, C = SPEC["input_size"], SPEC["hidden_size"], SPEC["output_size"]
    rnn = nn.RNN(D, H, nonlinearity=SPEC["nonlinearity"], dtype=dtype)
    readout = nn.Linear(H, C, dtype=dtype)
    t = {k: torch.from_numpy(v) for k, v in {**PARAMS, **INPUTS}.items()}
    with torch.no_grad():
        for ref, name in NAMES.items():
            getattr(rnn, name).copy_(t[ref])
        readout.weight.copy_(t["W_out"])
        readout.bias.copy_(t["b_out"])
    X, h0 = t["X"].clone().requires_grad_(True), t["h0"].clone().requires_grad_(True)
    T = X.shape[0]
    k = SPEC["truncation"] or T
    h, outs = h0.unsqueeze(0), []
    for start in range(0, T, k):
        if start > 0:
            h = h.detach()  # truncated BPTT: no gradient across a chunk boundary
        out, h = rnn(X[start : start + k], h)
        outs.append(out)
    H_all = torch.cat(outs)
    Y = readout(H_all[-1] if SPEC["readout"] == "last" else H_all)
    if SPEC["loss"] == "mse":
        loss = F.mse_loss(Y, t["targets"])
    else:
        loss = F.cross_entropy(Y.reshape(-1, C), t["targets"].reshape(-1))
    if QUANTITY == "forward":
        return {"Y": Y.detach().numpy(), "loss": loss.detach().numpy()}
    objective = (Y * t["dY"]).sum() if QUANTITY == "gradient" else loss
    wrt = {ref: getattr(rnn, name) for ref, name in NAMES.items()}
    wrt.update({"W_out": readout.weight, "b_out": readout.bias, "X": X, "h0": h0})
    grads = torch.autograd.grad(objective, list(wrt.values()), allow_unused=True, materialize_grads=True)
    return {k: g.numpy() for k, g in zip(wrt, grads)}
"""

JAX_RNN = """
import jax

jax.config.update("jax_enable_x64", True)
import flax.linen as nn
import jax.numpy as jnp
import optax


def compute():
    H, C = SPEC["hidden_size"], SPEC["output_size"]
    act = {"tanh": jnp.tanh, "relu": jax.nn.relu}[SPEC["nonlinearity"]]
    dtype = jnp.dtype(DTYPE)
    rnn = nn.RNN(nn.SimpleCell(H, activation_fn=act, dtype=dtype, param_dtype=dtype), return_carry=True)
    readout = nn.Dense(C, dtype=dtype, param_dtype=dtype)
    P = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    params = {"cell": {"i": {"kernel": P["W_ih"].T, "bias": P["b_ih"] + P["b_hh"]},
                       "h": {"kernel": P["W_hh"].T}},
              "readout": {"kernel": P["W_out"].T, "bias": P["b_out"]}}
    targets = jnp.asarray(INPUTS["targets"])
    T = INPUTS["X"].shape[0]
    k = SPEC["truncation"] or T

    def f(params, X, h0):
        cell = {"params": {"cell": params["cell"]}}
        h, chunks = h0, []
        for start in range(0, T, k):
            if start > 0:
                h = jax.lax.stop_gradient(h)  # truncated BPTT: no gradient across a chunk boundary
            h, out = rnn.apply(cell, X[start : start + k].swapaxes(0, 1), initial_carry=h)
            chunks.append(out)
        H_all = jnp.concatenate(chunks, axis=1)  # (N, T, H), batch-major as flax's nn.RNN
        out = {"params": params["readout"]}
        if SPEC["readout"] == "last":
            Y = readout.apply(out, H_all[:, -1])
        else:
            Y = readout.apply(out, H_all).swapaxes(0, 1)
        if SPEC["loss"] == "mse":
            loss = optax.squared_error(Y, targets).mean()
        else:
            rows, labels = Y.reshape(-1, C), targets.reshape(-1)
            loss = optax.softmax_cross_entropy_with_integer_labels(rows, labels).mean()
        return Y, loss

    (Y, loss), pullback = jax.vjp(f, params, jnp.asarray(INPUTS["X"]), jnp.asarray(INPUTS["h0"]))
    if QUANTITY == "forward":
        return {"Y": np.asarray(Y), "loss": np.asarray(loss)}
    if QUANTITY == "gradient":
        g, dX, dh0 = pullback((jnp.asarray(INPUTS["dY"]), jnp.zeros_like(loss)))
    else:
        g, dX, dh0 = pullback((jnp.zeros_like(Y), jnp.ones_like(loss)))
    cell = g["cell"]
    b = np.asarray(cell["i"]["bias"])  # the one bias b = b_ih + b_hh: each of torch's two gets its gradient
    return {"W_ih": np.asarray(cell["i"]["kernel"]).T, "W_hh": np.asarray(cell["h"]["kernel"]).T, "b_ih": b,
            "b_hh": b, "W_out": np.asarray(g["readout"]["kernel"]).T,
            "b_out": np.asarray(g["readout"]["bias"]),
            "X": np.asarray(dX), "h0": np.asarray(dh0)}
"""

TEMPLATES = {
    ("mlp", "torch"): TORCH_MLP,
    ("mlp", "jax"): JAX_MLP,
    ("rnn", "torch"): TORCH_RNN,
    ("rnn", "jax"): JAX_RNN,
}
FAMILY = {"mlp": "mlp", "mlp_bn": "mlp", "rnn": "rnn", "rnn_truncated": "rnn"}
