"""Where devkit's shipped data lives: `templates/` inside the wheel, or the source checkout's."""

from __future__ import annotations

from pathlib import Path

from devkit.errors import DevkitError

_PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """`devkit/templates` in an installed wheel (hatch force-include), else the repository's `templates/`."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise DevkitError(
        f"devkit's templates are missing (looked in {_PACKAGE / 'templates'} and {_PACKAGE.parent / 'templates'})",
        "Reinstall devkit; the wheel ships them as devkit/templates.",
    )


def template(*parts: str) -> Path:
    """One file under the templates directory, e.g. template("ci", "github-actions.yml")."""
    path = templates_dir().joinpath(*parts)
    if not path.is_file():
        raise DevkitError(
            f"devkit template {'/'.join(parts)} is missing from {templates_dir()}",
            "Reinstall devkit.",
        )
    return path
