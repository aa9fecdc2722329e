"""The plugin's tests need it installed (pip install -e ./plugins/keras) with keras; without
them there is nothing here to test, and the suite's own tests run as before."""

from importlib.util import find_spec

collect_ignore_glob = [] if find_spec("conformance_keras") and find_spec("keras") else ["test_*.py"]
