"""Code shipped to a host: a package of devkit.provision.onhost as ONE Python script.

The host runs it as `python3 -I -S -c SCRIPT ARGS` (ssh/command.PYTHON) or from a file the stack
wrote (the edit loop's watcher): no devkit, no site-packages, only the standard library. The script
holds each module's source and an importer that serves them under their own names, so the modules
import each other as they do here (and run here, unshipped, in the tests); it then runs the entry
module's `main(sys.argv)`, or, exec'd by another shipped script, gives it the entry's names.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

_LOADER = """\
import importlib, importlib.abc, importlib.util, sys


class _Shipped(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in SOURCES or name in PACKAGES:
            return importlib.util.spec_from_loader(name, self, is_package=name in PACKAGES)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = compile(SOURCES.get(module.__name__, ""), "<devkit %s>" % module.__name__, "exec")
        exec(code, module.__dict__)

    def get_source(self, name):
        return SOURCES.get(name)


sys.meta_path.insert(0, _Shipped())
_entry = importlib.import_module(ENTRY)
globals().update((k, v) for k, v in vars(_entry).items() if not k.startswith("__"))
if __name__ == "__main__":
    sys.exit(_entry.main(sys.argv))
"""


@functools.cache
def script(package: str, entry: str) -> str:
    """The package's modules (and the packages above it, empty) as one script running `entry`."""
    pkg = importlib.import_module(package)
    root = Path(pkg.__file__ or "").parent
    sources, packages = {}, set()
    parts = package.split(".")
    packages |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).with_suffix("").parts
        name = ".".join([package, *rel[:-1]] + ([] if rel[-1] == "__init__" else [rel[-1]]))
        if rel[-1] == "__init__":
            packages.add(name)
        sources[name] = f.read_text(encoding="utf-8")
    head = f"# devkit: {package}, shipped as one script (standard library only)\n"
    values = f"SOURCES = {sources!r}\nPACKAGES = {sorted(packages)!r}\nENTRY = {entry!r}\n"
    return head + values + _LOADER


def edit_script() -> str:
    """The edit loop's host side (onhost/edit/): the watcher's file and the commands' script."""
    return script("devkit.provision.onhost.edit", "devkit.provision.onhost.edit.cli")
