"""One folder per component: everything the suite knows about it, in one place.

    conformance/components/<name>/
        __init__.py       the record(s): COMPONENTS, a tuple of conformance.component.Component
        reference.py      the reference runner: refimpl answering the backend contract
        strategies.py     hypothesis strategies drawing its cases
        properties.py     its own properties (the generic ones are conformance.properties)
        torch_adapter.py  torch, through torch's own layers and functions
        jax_adapter.py    JAX, through flax, jax.nn and optax
        test_<name>.py    one line: its checks as pytest tests

A new component is such a folder, one line in conformance.registry.PACKAGES and its
rows in the README (CONTRIBUTING.md walks through it).
"""
