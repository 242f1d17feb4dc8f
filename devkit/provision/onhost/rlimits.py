"""Installed by devkit into a venv (with a .pth that imports it) on a host whose Docker engine cannot
raise its hard rlimits (no CAP_SYS_RESOURCE): every container this venv creates through aiodocker
asks for at most what the engine can grant. Backend.AI 23.09's agent hard-codes nofile=1048576 and
memlock=unlimited, which runc cannot set there (`error setting rlimit type 7`); its code on disk is
left as it is: the hook caps the request when aiodocker is imported.

Stdlib only, cheap at start-up (one finder on sys.meta_path), and a no-op in a process that never
imports aiodocker.
"""

# devkit writes the engine's hard limits here (name -> value; -1 is unlimited)
LIMITS: dict[str, int] = {}

import sys  # noqa: E402

TARGET = "aiodocker.containers"


def cap(config: object, limits: dict[str, int]) -> object:
    """The container config with each Ulimits entry lowered to the engine's limit (in place)."""
    host = config.get("HostConfig") if isinstance(config, dict) else None
    entries = host.get("Ulimits") if isinstance(host, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        top = limits.get(entry.get("Name")) if isinstance(entry, dict) else None
        if top is None or top < 0:
            continue
        for key in ("Soft", "Hard"):
            value = entry.get(key)
            if isinstance(value, int) and (value < 0 or value > top):
                entry[key] = top
    return config


def patch(module: object) -> None:
    """Wrap DockerContainers.create (run() and create_or_replace() call it) once."""
    cls = getattr(module, "DockerContainers", None)
    create = getattr(cls, "create", None)
    if create is None or getattr(create, "devkit_capped", False):
        return

    async def capped(self: object, config: object, *args: object, **kwargs: object) -> object:
        return await create(self, cap(config, LIMITS), *args, **kwargs)

    capped.devkit_capped = True  # type: ignore[attr-defined]
    cls.create = capped  # type: ignore[union-attr]


def _patched(loader: object) -> object:
    run = loader.exec_module  # type: ignore[attr-defined]

    def exec_module(module: object) -> None:
        run(module)
        patch(module)

    loader.exec_module = exec_module  # type: ignore[attr-defined]
    return loader


class Finder:
    """Finds aiodocker.containers with the other finders and patches it right after it runs."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None and spec.loader is not None:
                _patched(spec.loader)
                return spec
        return None


if LIMITS and not any(isinstance(f, Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, Finder())
