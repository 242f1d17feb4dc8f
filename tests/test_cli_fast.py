"""The hook commands' argparse-free fast path parses exactly what argparse would."""

from __future__ import annotations

import argparse

import pytest

from devkit.cli import fast_parse
from devkit.commands import check_branch, check_commit

CASES = {
    check_commit: [
        [".git/COMMIT_EDITMSG"],
        ["-m", "feat: x"],
        ["--message=feat: x"],
        ["--range", "a..b"],
        ["--range=a..b", "--format", "json"],
        ["msg", "--format=github", "--config", "p.toml"],
        ["--format", "xml", "msg"],
        ["-m", "x", "msg"],
        ["msg", "other"],
        ["--bogus"],
        ["-h"],
        ["-m"],
        ["--range", "a..b", "--range", "c..d"],
        ["-"],
    ],
    check_branch: [
        [],
        ["feat/x"],
        ["--name", "feat/x"],
        ["--name=feat/x", "--format", "json"],
        ["a", "b"],
        ["--format", "nope"],
        ["--help"],
    ],
}


def argparse_result(module, argv: list[str]) -> dict | None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    module.configure(parser, ("check", "x"))
    try:
        return vars(parser.parse_args(argv))
    except (argparse.ArgumentError, SystemExit):
        return None


@pytest.mark.parametrize(("module", "argv"), [(m, a) for m, cases in CASES.items() for a in cases])
def test_fast_path_agrees_with_argparse(module, argv: list[str], capsys) -> None:
    fast = fast_parse(argv, module.FAST_OPTIONS)
    slow = argparse_result(module, argv)
    capsys.readouterr()
    if fast is not None:  # when the fast path answers, argparse would have said the same
        assert vars(fast) == slow
    # and every ordinary hook invocation takes the fast path
    repeated = len({a.split("=")[0] for a in argv if a.startswith("--")}) < sum(
        a.startswith("--") for a in argv
    )
    if slow is not None and "-h" not in argv and "--help" not in argv and not repeated:
        assert fast is not None, argv
