"""Source files devkit installs into a host's venvs (stdlib only; they run in the host's Python)."""
