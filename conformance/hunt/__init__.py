"""The hunt: a budgeted search for disagreements nobody has catalogued (`python -m conformance hunt`).

Two lanes feed one set of findings:

* the fast lane (`populations`, `reference`, `torch_populations`, `jax_populations`,
  `screen`): an architecture from a bounded set of shape buckets, a population of
  parameter sets and inputs for it, run through each framework in one vectorized call
  and through the reference as one block-diagonal network, compared member by member;
* the property lane (`tasks`): every check of every registered component, in every
  installed framework and dtype, one case at a time from the check's own strategy
  under the `hunt` profile.

Nothing becomes a finding until `conformance.runner.run_property` fails on that single
case (`confirm`). A finding is then minimized (`minimize`), given a signature and a
severity, and written once: its `.npz` for `replay`, a standalone script that needs only
NumPy and the framework (`scripts`), an entry of `findings.md` (`findings`). Work runs in
worker processes that are restarted when a framework crashes them (`workers`), or on a
Dask cluster (`cluster`); `engine` holds the budget, the schedule and the progress display.
"""
