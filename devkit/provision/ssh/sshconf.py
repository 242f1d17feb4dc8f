"""devkit's one ssh_config file, Included once from the user's own (~/.ssh/config).

The file (<state dir>/ssh_config) holds what devkit keeps for `ssh` and VS Code: the Include of the
sandboxes' snippets while any sandbox exists, and the Host blocks `devkit ssh-config HOST --write`
wrote. It is rendered from a record beside it (ssh_config.json), so a write replaces a host's
blocks and nothing else. The user's file gets one marked Include line at its top (an Include
applies to every host only before the first Host block) and nothing more; when devkit's file has
nothing left to say, the line goes again, with the file and folder devkit created for it.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
from pathlib import Path
from typing import Any

from devkit import paths
from devkit.errors import DevkitError

MARK = (
    "# added by devkit: its Host blocks and sandboxes (devkit ssh-config --write, devkit sandbox)"
)
OLD_MARK = "# added by devkit sandbox"  # what the sandbox wrote before this file existed
HEAD = "# written by devkit: `devkit ssh-config HOST --write` and `devkit sandbox` keep it; edits are lost\n"


def managed_file() -> Path:
    return paths.state_dir() / "ssh_config"


def _record_file() -> Path:
    return paths.state_dir() / "ssh_config.json"


def _sandboxes_include() -> str:
    return f"Include {paths.state_dir()}/sandbox/*/ssh_config"


def include_line() -> str:
    return f"Include {managed_file()}"


def _load() -> dict[str, Any]:
    try:
        data = json.loads(_record_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return {
        "sandboxes": bool(data.get("sandboxes")),
        "hosts": dict(data.get("hosts") or {}),
        "created": list(data.get("created") or []),
    }


def render(record: dict[str, Any]) -> str:
    """The managed file's text for a record (pure)."""
    parts = [HEAD]
    if record["sandboxes"]:
        parts.append(_sandboxes_include() + "\n")
    for name in sorted(record["hosts"]):
        parts.append(f"\n# devkit ssh-config {name} --write\n{record['hosts'][name].rstrip()}\n")
    return "".join(parts)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.devkit-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)


def _check_path() -> None:
    if re.search(r"\s", str(paths.state_dir())):
        raise DevkitError(
            f"devkit's state dir {paths.state_dir()} contains whitespace, which ssh_config cannot hold",
            "Set DEVKIT_STATE_DIR to a path without spaces.",
        )


def _save(record: dict[str, Any]) -> None:
    """Write the managed file and its record, or remove all of it (and the Include) when empty."""
    if not record["sandboxes"] and not record["hosts"]:
        _remove_include(record["created"])
        managed_file().unlink(missing_ok=True)
        _record_file().unlink(missing_ok=True)
        return
    _check_path()
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    created = _ensure_include(record["created"])
    record = {**record, "created": created}
    _write_atomic(managed_file(), render(record), 0o600)
    _write_atomic(_record_file(), json.dumps(record, indent=1) + "\n", 0o600)


def set_sandboxes(on: bool) -> None:
    """Include the sandboxes' snippets (while any sandbox exists) or stop including them."""
    record = _load()
    if record["sandboxes"] != on or (on and not managed_file().is_file()):
        _save({**record, "sandboxes": on})


def write_host(name: str, block: str) -> bool:
    """Keep `block` as host `name`'s entry; False when it was already there, word for word."""
    record = _load()
    if record["hosts"].get(name) == block and managed_file().is_file() and _has_include():
        return False
    _save({**record, "hosts": {**record["hosts"], name: block}})
    return True


def written_hosts() -> list[str]:
    """The hosts `devkit ssh-config --write` keeps blocks for (each also has NAME-tunnel)."""
    return sorted(_load()["hosts"])


def remove_host(name: str) -> bool:
    record = _load()
    if name not in record["hosts"]:
        return False
    hosts = {k: v for k, v in record["hosts"].items() if k != name}
    _save({**record, "hosts": hosts})
    return True


# --- the user's ssh config ---------------------------------------------------------------------


def user_config_text() -> str:
    """The user's ssh config ("" when there is none), or one line saying why devkit cannot edit it."""
    cfg = paths.ssh_config_file()
    if cfg.is_symlink() and not cfg.exists():
        raise DevkitError(
            f"{cfg} is a link to {os.readlink(cfg)}, which does not exist",
            "Point the link at your ssh config, or remove it.",
        )
    if not cfg.exists():
        return ""
    if not cfg.is_file():
        raise DevkitError(
            f"{cfg} is not a regular file: devkit adds one Include line to it",
            "Make it your ssh config file, or point DEVKIT_SSH_CONFIG at one.",
        )
    try:
        return cfg.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DevkitError(
            f"{cfg}: byte {exc.start} is not UTF-8: devkit adds one Include line to it as text",
            f"Convert it to UTF-8 (iconv -f latin1 -t utf-8 {cfg}), or remove that byte.",
        ) from None
    except OSError as exc:
        raise DevkitError(
            f"{cfg}: cannot read it: {exc.strerror}",
            f"Make it readable by you (chmod u+rw {cfg}).",
        ) from None


def check_user_config() -> None:
    """One line, before anything starts, when the user's ssh config cannot take the Include line."""
    user_config_text()


def _write_user_config(text: str) -> None:
    """Replace the user's ssh config's text; a link is followed: its target is edited, in its own
    folder (so the rename is atomic), and the link stays."""
    cfg = Path(os.path.realpath(paths.ssh_config_file()))
    mode = cfg.stat().st_mode & 0o777 if cfg.exists() else 0o600
    _write_atomic(cfg, text, mode)


def _has_include() -> bool:
    return include_line() in user_config_text().splitlines()


def _without_ours(text: str) -> str:
    """The user's text without devkit's marked lines (this file's and the sandbox's older ones)."""
    ours = {MARK, include_line(), OLD_MARK, _sandboxes_include()}
    lines = text.splitlines(keepends=True)
    out, skip_blank = [], False
    for ln in lines:
        if ln.rstrip("\n") in ours:
            skip_blank = True
            continue
        if skip_blank and ln.strip() == "":
            skip_blank = False
            continue
        skip_blank = False
        out.append(ln)
    return "".join(out)


def _ensure_include(created: list[str]) -> list[str]:
    """The Include line at the top of the user's ssh config, once; returns what devkit created."""
    cfg = paths.ssh_config_file()
    text = user_config_text()
    if text.startswith(f"{MARK}\n{include_line()}\n"):
        return created
    made = [str(p) for p in (cfg.parent, cfg) if not p.exists()]
    cfg.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    rest = _without_ours(text)  # an older sandbox Include is replaced, not doubled
    _write_user_config(f"{MARK}\n{include_line()}\n\n{rest}")
    return [*created, *made]


def _remove_include(created: list[str]) -> None:
    """Take back the Include line, and the file and folder if devkit made them and they are empty."""
    cfg = paths.ssh_config_file()
    if cfg.is_file():
        text = user_config_text()
        rest = _without_ours(text)
        if rest != text:
            _write_user_config(rest)
        if str(cfg) in created and not rest and not cfg.is_symlink():
            cfg.unlink()
    if str(cfg.parent) in created and cfg.parent.is_dir() and not any(cfg.parent.iterdir()):
        cfg.parent.rmdir()


# --- who else defines a host -------------------------------------------------------------------


def _host_lines(path: Path, seen: set[Path], depth: int = 0) -> list[tuple[str, int, list[str]]]:
    """(file, line, patterns) of every Host line in path and the files it Includes (not devkit's)."""
    if depth > 8 or path in seen or not path.is_file():
        return []
    seen.add(path)
    out = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for n, raw in enumerate(lines, 1):
        words = raw.strip().replace("=", " ", 1).split()
        if not words or words[0].startswith("#"):
            continue
        key = words[0].lower()
        if key == "host":
            out.append((str(path), n, [w.strip('"') for w in words[1:]]))
        elif key == "include":
            for pattern in words[1:]:
                pattern = os.path.expanduser(pattern.strip('"'))
                if not os.path.isabs(pattern):
                    pattern = str(Path.home() / ".ssh" / pattern)
                if Path(pattern) == managed_file():
                    continue
                for inc in sorted(glob.glob(pattern)):
                    out += _host_lines(Path(inc), seen, depth + 1)
    return out


def defined_elsewhere(alias: str) -> str:
    """Where the user's ssh config (or a sandbox's snippet it includes) already has a Host entry
    for alias ("file:line"), else "". `Host *` and negated patterns do not count."""
    for where, line, patterns in _host_lines(paths.ssh_config_file(), set()):
        if any(p.startswith("!") and fnmatch.fnmatchcase(alias, p[1:]) for p in patterns):
            continue
        if any(p != "*" and fnmatch.fnmatchcase(alias, p) for p in patterns):
            return f"{where}:{line}"
    box = paths.state_dir() / "sandbox" / alias / "ssh_config"
    if box.is_file() and _load()["sandboxes"]:
        return str(box)
    return ""
