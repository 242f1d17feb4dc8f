"""Where devkit's launcher keeps what it says of the service it runs: `<base>/run/serving/`."""

from __future__ import annotations

import os


def serving_dir(base: str) -> str:
    return os.path.join(base, "run", "serving")


def control_path(base: str, service: str) -> str:
    return os.path.join(serving_dir(base), service + ".sock")


def state_path(base: str, service: str) -> str:
    return os.path.join(serving_dir(base), service + ".json")


def site_dir(base: str) -> str:
    """Where the sitecustomize that records each child's imports (record.py) is written."""
    return os.path.join(serving_dir(base), "site")


def imports_prefix(base: str, service: str) -> str:
    """Each child of the service writes `<this>.<pid>.json`: the checkout modules it imported."""
    return os.path.join(serving_dir(base), service + ".imports")


def zygote_plan(base: str, service: str) -> str:
    """What the service's warm interpreter imports (zygote.py's plan)."""
    return os.path.join(serving_dir(base), service + ".zygote.json")
