"""`python3 -I -S devkit-edit.py changed|locate REQUEST | watch RULES | launch SERVICE RULES --
COMMAND...`: the commands the shipped script runs."""

from __future__ import annotations

import json
import sys

from devkit.provision.onhost.edit import launch
from devkit.provision.onhost.edit.find import located
from devkit.provision.onhost.edit.look import Lock, once
from devkit.provision.onhost.edit.watch import watch


def main(argv: list[str]) -> int:
    if len(argv) >= 6 and argv[1] == "launch" and argv[4] == "--":
        return launch.main(argv[2], argv[3], argv[5:])
    if len(argv) < 3 or argv[1] not in ("changed", "locate", "watch"):
        sys.stderr.write(
            "usage: devkit-edit.py changed|locate REQUEST | watch RULES | "
            "launch SERVICE RULES -- COMMAND...\n"
        )
        return 2
    if argv[1] == "watch":
        try:
            return watch(argv[2])
        except KeyboardInterrupt:
            return 0
    req = json.loads(argv[2])
    try:
        where = located(req)
    except (LookupError, OSError, ValueError) as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 0
    if argv[1] == "locate":
        sys.stdout.write(json.dumps(where) + "\n")
        return 0
    rules = where["rules"]
    with Lock(rules["base"]):
        report = once(rules, dry_run=bool(req.get("dry_run")))
    report.pop("told", None)
    report["base"] = rules["base"]
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


# unshipped, from the package: `python -m devkit.provision.onhost.edit.cli`
if __name__ == "__main__":
    sys.exit(main(sys.argv))
