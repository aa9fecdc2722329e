"""The pitfalls of backpropagation, measured on the reference (docs/pitfalls.md).

* depth:     the gradient norm of every layer of a deep MLP at initialization, for
             sigmoid, tanh, relu and leaky relu, and how the initialization's scale moves it;
* dying:     ReLU units that a few large SGD steps switch off for good, against leaky ReLU;
* clipping:  a clipping routine whose flat buffer becomes the parameters, against a correct one;
* recurrent: ‖∂L/∂h_t‖ through time with ‖W_hh‖ below and above 1, truncated BPTT, and clipping.

NumPy only, built from the reference's own layers; each measurement is a pure function of
its seed, so the figures (refimpl.figures) and the tests read the same numbers.
"""
