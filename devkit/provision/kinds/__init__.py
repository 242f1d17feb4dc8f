"""The resource kinds (registry.py lists them) and what they share."""
