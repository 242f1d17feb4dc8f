"""devkit: contributor conventions, one CI step, and dev VMs over SSH."""

# A literal, not importlib.metadata: the hook paths must not pay ~50 ms for it.
__version__ = "0.1.0"
