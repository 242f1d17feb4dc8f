"""A stack as data: its spec, variables and their types, templates, and its layout on a host."""
