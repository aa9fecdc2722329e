"""Faults planted in torch for the hunt's tests, in every process started with this folder on
PYTHONPATH (the hunt, its workers, a finding's standalone script). HUNT_FAULT chooses:

  wide-tanh        torch.tanh's derivative is 1 - y instead of 1 - y² on inputs whose last
                   axis has 24 or more entries: wider than any layer of the ci catalog (16)
  segfault-sigmoid torch.sigmoid on inputs whose last axis has exactly 12 entries kills the
                   process with SIGSEGV, as a crashing framework would
"""

import os

FAULT = os.environ.get("HUNT_FAULT", "")

if FAULT:
    import signal

    import torch

    _tanh, _sigmoid = torch.tanh, torch.sigmoid

    class WideTanh(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return _tanh(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)
            ctx.wide = inputs[0].shape[-1] >= 24

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * ((1 - y) if ctx.wide else (1 - y * y))

    def tanh(x, *args, **kwargs):
        return WideTanh.apply(x) if not args and not kwargs else _tanh(x, *args, **kwargs)

    def sigmoid(x, *args, **kwargs):
        if x.shape[-1] == 12:
            os.kill(os.getpid(), signal.SIGSEGV)
        return _sigmoid(x, *args, **kwargs)

    if FAULT == "wide-tanh":
        torch.tanh = tanh
    elif FAULT == "segfault-sigmoid":
        torch.sigmoid = sigmoid
