"""The source-mode kinds on their own: where the code comes from (checkout), the dev venv from the
checkout's own pins, and its Git LFS files; with real git repositories, real lock files and a real
wheel, through the in-memory FakeHost (the same paths run for real in tests/e2e)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devkit.errors import DevkitError, RemoteError
from devkit.provision.engine import desired, hosts, plan
from devkit.provision.kinds import checkout, devvenv, lfs
from devkit.provision.kinds.base import SOURCE, ApplyContext
from devkit.provision.kinds.registry import load_stack
from devkit.provision.stack import source as source_code
from devkit.provision.stack import spec as stk
from tests.fakehost import FakeHost, fresh_raw, parsed
from tests.gitrepo import Repo

PANTS = '[python]\ninterpreter_constraints = ["CPython==3.11.8"]\n'


@pytest.fixture
def source(tmp_path: Path) -> Repo:
    """A small monorepo on branch 23.09, with a pants.toml, pins and one LFS pointer."""
    r = Repo.init(tmp_path / "src", tmp_path / "home")
    blob = b"the kernel runner's binary\n"
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{hashlib.sha256(blob).hexdigest()}\nsize {len(blob)}\n"
    )
    r.commit(
        "chore: a monorepo",
        {
            "pants.toml": PANTS,
            "requirements.txt": "six\n",
            "python.lock": "// pants\n"
            + json.dumps(_pants_lock({"six": "1.16.0", "yarl": "1.18.3"})),
            "VERSION": "23.09.11\n",
            ".gitattributes": "src/runner/*.bin filter=lfs diff=lfs merge=lfs -text\n",
            "src/runner/tool.bin": pointer,
        },
    )
    r.git("branch", "-m", "23.09")
    return r


def _pants_lock(pins: dict[str, str]) -> dict:
    return {
        "locked_resolves": [
            {"locked_requirements": [{"project_name": n, "version": v} for n, v in pins.items()]}
        ]
    }


def test_a_source_is_a_url_a_bundle_or_a_repository(source: Repo, tmp_path: Path) -> None:
    assert (
        checkout.parse_source("pypi", "x") is None and checkout.parse_source(" none ", "x") is None
    )
    url = checkout.parse_source("https://github.com/lablup/backend.ai@main", "x")
    assert url == checkout.Source("url", "https://github.com/lablup/backend.ai", "main")
    ssh_url = checkout.parse_source("git@github.com:lablup/backend.ai.git@23.09", "x")
    assert ssh_url == checkout.Source("url", "git@github.com:lablup/backend.ai.git", "23.09")
    repo = checkout.parse_source(f"{source.path}@23.09", "x")
    assert repo == checkout.Source("repo", str(source.path.resolve()), "23.09")
    bundle = tmp_path / "b.bundle"
    source.git("bundle", "create", str(bundle), "--all")
    assert checkout.parse_source(str(bundle), "x").kind == "bundle"
    with pytest.raises(DevkitError, match="neither a git URL nor a bundle"):
        checkout.parse_source(str(tmp_path / "nothing"), "stack.toml: checkout.source")
    with pytest.raises(DevkitError, match="is not a branch or tag name"):
        checkout.parse_source("https://x/y@a;b", "x")


def test_local_is_the_clone_devkit_runs_from_pushed_each_time_it_moves(
    source: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (source.path / "src" / "runner").mkdir(exist_ok=True)
    monkeypatch.chdir(source.path / "src" / "runner")  # anywhere in the clone
    head = source.git("rev-parse", "HEAD").strip()
    src = checkout.parse_source("local", "x")
    assert src == checkout.Source("local", str(source.path.resolve()), "23.09", head)
    assert source_code.read(src).python == "3.11.8"  # read from the commit that is pushed

    def planned(**have: object) -> list[tuple[str, str]]:
        facts = checkout.CheckoutFacts(**{**_NO_CHECKOUT, **have})  # type: ignore[arg-type]
        d = _Desired({checkout.NAME: checkout.DCheckout("/root/backend.ai", src)})
        f = _Facts({checkout.NAME: facts})
        return [(op.action, op.detail) for op in checkout.plan(d, f, None)]  # type: ignore[arg-type]

    [(action, detail)] = planned()
    assert action == "push" and detail.startswith(f"23.09 ({head[:10]}) of ")
    mine = {"source": str(source.path.resolve()), "commit": head}
    assert planned(exists=True, head=head, recorded=mine) == []  # nothing moved: a no-op
    assert planned(exists=True, head=head)[0][0] == "adopt"  # the same commit, pushed by hand
    assert planned(exists=True, head="0" * 40, recorded=mine)[0][0] == "push"  # it moved
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DevkitError, match="`local` is the git clone devkit is run from"):
        checkout.parse_source("local", "pyproject.toml: backend_ai.source")


_NO_CHECKOUT = {
    "exists": False, "head": "", "branch": "", "dirty": (), "recorded": {}, "python": "",
    "version": "", "pins": "",
}  # fmt: skip


class _Desired(NamedTuple):
    items: dict[str, Any]

    def of(self, kind: str) -> Any:
        return self.items[kind]


class _Facts(NamedTuple):
    kinds: dict[str, Any]

    def of(self, kind: str) -> Any:
        return self.kinds[kind]


def test_the_interpreter_is_read_from_the_source_before_anything_changes(
    source: Repo, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.bundle"
    source.git("bundle", "create", str(bundle), "--all")
    for spec in (f"{source.path}@23.09", f"{bundle}@23.09"):
        assert source_code.read(checkout.parse_source(spec, "x")).python == "3.11.8"
    trixie = parsed(
        fresh_raw(os={"id": "debian", "version": "13", "name": "Debian 13"}, pythons=["3.13"])
    )
    with pytest.raises(RemoteError) as info:
        checkout.need_interpreter("vm", "checkout", "3.11.8", trixie.host)
    e = info.value
    assert "needs Python 3.11 (its pants.toml asks for CPython 3.11.8)" in e.detail
    assert "Debian 13 has Python 3.13" in e.detail and "--release bookworm" in e.hint


def _stack(source_spec: str) -> stk.Stack:
    s = load_stack("backend.ai")._replace(wheels="remote")
    return s._replace(
        vars={**s.vars, "backend_ai": {**s.vars["backend_ai"], "source": source_spec}}
    )


def test_a_fresh_host_clones_first_and_the_rest_is_planned_from_the_source_read_here(
    source: Repo, tmp_path: Path
) -> None:
    """A source on this machine says what it brings before it is sent: the dev venv and the LFS
    files are planned from it before anything changes, and the checkout is made first."""
    t = hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {})
    s = _stack(f"{source.path}@23.09")
    f = parsed(fresh_raw(base="/srv/dk"))
    d = desired.build(s, t, {}, f)
    ops = plan.plan(d, f)
    (clone_op,) = [o for o in ops if o.id == "checkout"]
    assert clone_op.action == "clone" and checkout.STAGE == SOURCE  # applied before the rest
    ids = [o.id for o in ops]
    assert ids.index("checkout") < ids.index("devvenv") < ids.index("supervisord")
    v = d.of("devvenv")
    assert v.path == "/root/backend.ai/dist/export/python/virtualenvs/python-default/3.11.8"
    assert v.python == "/usr/bin/python3.11" and v.fixes == ("yarl==1.9.4",)
    assert d.of("lfs").version == "23.09.11"  # its pointers are looked for once it is there
    wrapper = next(x.content for x in d.of("files") if x.id == "python")
    assert "cd /root/backend.ai" in wrapper and 'PYTHONPATH="src' in wrapper
    assert f"exec {v.path}/bin/python" in wrapper
    vm = FakeHost("vm", fresh_raw(base="/srv/dk"))
    checkout.apply(vm, clone_op, ApplyContext(d, f))
    (bundle_path,) = [p for p in vm.files if p.endswith(".bundle")]
    clone = next(t for op, t in vm.log if "git clone" in t)
    assert f"--branch 23.09 -- {bundle_path} /root/backend.ai" in clone
    assert json.loads(vm.files["/srv/dk/state/checkout.json"][0])["ref"] == "23.09"
    # once it is there (the facts say so), the same desired state plans no checkout
    raw = fresh_raw(base="/srv/dk")
    raw["kinds"]["checkout"] = {
        "exists": True, "head": "abc", "branch": "23.09", "dirty": [], "python": "3.11.8",
        "version": "23.09.11", "pins": "p1",
        "recorded": {"path": "/root/backend.ai", "source": str(source.path.resolve()), "ref": "23.09", "commit": "abc"},
    }  # fmt: skip
    assert "checkout" not in [o.id for o in plan.plan(d, parsed(raw))]


def test_a_switch_never_moves_a_checkout_with_work_in_it(source: Repo) -> None:
    t = hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {})
    raw = fresh_raw(base="/srv/dk")
    raw["kinds"]["checkout"] = {
        "exists": True, "head": "def", "dirty": [" M src/x.py"], "python": "3.11.8",
        "recorded": {"path": "/root/backend.ai", "source": "https://x/y", "ref": "23.09", "commit": "abc"},
    }  # fmt: skip
    f = parsed(raw)
    d = desired.build(_stack(f"{source.path}@23.09"), t, {}, f)
    (op,) = [o for o in plan.plan(d, f) if o.id == "checkout"]
    assert op.action == "switch"
    with pytest.raises(RemoteError, match="1 uncommitted change"):
        checkout.check(FakeHost("vm"), [op], ApplyContext(d, f))


@pytest.mark.parametrize("kind", ["pants", "uv"])
def test_the_locks_pins_become_constraints_with_the_fixes_instead(
    kind: str, tmp_path: Path
) -> None:
    lock = tmp_path / "python.lock"
    if kind == "pants":
        lock.write_text(
            "// a Pants lock\n" + json.dumps(_pants_lock({"six": "1.16.0", "yarl": "1.18.3"}))
        )
    else:
        lock.write_text(
            'version = 1\n[[package]]\nname = "six"\nversion = "1.16.0"\n'
            'source = { registry = "https://pypi.org/simple/" }\n'
            '[[package]]\nname = "yarl"\nversion = "1.18.3"\n'
            'source = { registry = "https://pypi.org/simple/" }\n'
            '[[package]]\nname = "backend-ai-common"\nversion = "26.8.0rc1"\nsource = { editable = "src" }\n'
        )
    out = tmp_path / "cons.txt"
    subprocess.run(
        [sys.executable, "-I", "-c", devvenv.PINS, str(lock), str(out), "yarl==1.9.4"], check=True
    )
    assert out.read_text().splitlines() == ["six==1.16.0", "yarl==1.9.4"]


def test_a_dev_venv_is_whole_when_its_interpreter_and_pip_are_there(tmp_path: Path) -> None:
    """Its facts look at the venv, without starting it: a venv with its pip and its interpreter
    keeps its spec; one without pip, or whose interpreter was removed, is rebuilt."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / ".devkit-spec").write_text("abc\n")

    def spec() -> str:
        return devvenv.parse(devvenv.collect({"path": str(venv)}, str(tmp_path))).spec

    assert spec() == ""  # no pip: pip install would fail in it
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (venv / "lib" / minor / "site-packages" / "pip").mkdir()
    assert spec() == "abc"
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(tmp_path / "removed" / minor)
    assert spec() == ""


def test_lfs_pointers_are_filled_from_a_wheel_verified_by_sha256(
    source: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the collector, run here on the real clone, finds the pointer git would check out
    found = lfs.parse(lfs.collect({"path": str(source.path)}, "/nonexistent"))
    (p,) = found.pointers
    assert p.path == "src/runner/tool.bin" and p.size == 27
    # a wheel that carries the real file (and a decoy of the same size) in devkit's cache
    cache = tmp_path / "cache"
    (cache / "lfs").mkdir(parents=True)
    with zipfile.ZipFile(
        cache / "lfs" / "backend.ai_kernel_binary-23.9.10-py3-none-any.whl", "w"
    ) as z:
        z.writestr("ai/backend/runner/tool.bin", b"the kernel runner's binary\n")
        z.writestr("ai/backend/runner/decoy.bin", b"a file of the same size!!!\n")
    monkeypatch.setenv("DEVKIT_WHEEL_CACHE", str(cache))
    # the package index stands in for PyPI here (tests/e2e fetches from the real one): it has
    # nothing, and is asked in order while a file is missing
    asked: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(
        lfs, "_fetch", lambda dist, lookup, machine: asked.append((dist, lookup)) or []
    )
    missing = lfs.Pointer("src/runner/gone.bin", "1" * 64, 27)
    want = lfs.DLfs("/root/backend.ai", "23.09.11", ("backend.ai-kernel-binary",))
    facts_ = parsed(fresh_raw(base="/srv/dk"))
    d = desired.build(
        _stack("pypi"), hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {}), {}, facts_
    )
    vm = FakeHost("vm").on(r"head -c 44", stdout="src/runner/tool.bin\nsrc/runner/gone.bin\n")
    ctx = ApplyContext(d, facts_)
    op = plan.Op("lfs", "lfs", "fill", "", (want, lfs.LfsFacts((p, missing), True)))
    lfs.apply(vm, op, ctx)
    data, mode, _ = vm.files["/root/backend.ai/src/runner/tool.bin"]
    assert data == b"the kernel runner's binary\n" and mode == p.mode
    assert "/root/backend.ai/src/runner/gone.bin" not in vm.files
    # only the filled file goes through git's clean filter: its index entry then matches it
    assert "git -C /root/backend.ai add -- src/runner/tool.bin" in "\n".join(t for _, t in vm.log)
    assert any("1 Git LFS file(s)" in n for n in ctx.state["notes"])
    assert any("gone.bin: what uses" in n for n in ctx.state["notes"])
    assert [lookup[0] for _, lookup in asked] == ["==23.9.11", "==23.9.*", ""]  # then any line
    assert asked[-1][1][1:] == ("--python-version", "3.13")
    # the release's and its line's wheels are looked up for the checkout's Python (PyPI offers
    # 26.8.0's only to a Python 3.13 pip, and this machine's may be 3.11)
    assert lfs.lookups("26.8.0rc1", "3.13.7") == [
        ("==26.8.0rc1", "--python-version", "3.13"),
        ("==26.8.0", "--python-version", "3.13"),
        ("==26.8.*", "--python-version", "3.13"),
        ("", "--python-version", "3.13"),
    ]
    assert lfs.candidates("23.09.11") == ["23.9.11"] and lfs.candidates("26.8.0rc1") == [
        "26.8.0rc1",
        "26.8.0",
    ]


@pytest.mark.parametrize("where", ["here", "url"])
def test_the_engine_makes_the_checkout_first_and_builds_the_desired_state_once(
    source: Repo, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with a checkout to make: it is made first, the host is looked at again, and the dev
    venv, the LFS files and the services are planned from what the checkout says. The desired
    state is built once: from the source read here (a repository on this machine), or, for a URL
    only the host can read, after the host has cloned it."""
    from devkit.provision.engine import run as engine
    from tests.fakehost import connector

    spec = f"{source.path}@23.09" if where == "here" else "https://git.example/ai@23.09"
    origin = str(source.path.resolve()) if where == "here" else "https://git.example/ai"
    before = fresh_raw(base="/srv/dk")
    after = json.loads(json.dumps(before))
    after["kinds"]["checkout"] = {
        "exists": True, "head": "abc", "branch": "23.09", "dirty": [], "python": "3.11.8",
        "version": "23.09.11", "pins": "p1",
        "recorded": {"path": "/root/backend.ai", "source": origin, "ref": "23.09", "commit": "abc"},
    }  # fmt: skip

    class Host(FakeHost):
        def facts_answer(self, text: str) -> str:
            # the host as it is: with the checkout once it was cloned
            self.raw_facts = after if any("git clone" in t for _, t in self.log) else before
            return super().facts_answer(text)

    builds = []
    build = desired.build
    monkeypatch.setattr(
        desired, "build", lambda *a, **k: builds.append(k["code"]) or build(*a, **k)
    )
    vm = Host("vm", before).on("rev-parse HEAD", stdout="abc\n")
    job = engine.Job(_stack(spec), hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {}))
    [r] = engine.run([job], engine.Options({}), connector({"vm": vm}), lambda e: None)
    assert r.status == "changed", r.error
    ids = [op.id for op in r.ops]
    assert ids[0] == "checkout" and ids.index("devvenv") < ids.index("supervisord")
    assert vm.facts_calls >= 2  # the host looked at again once the checkout was there
    [code] = builds  # once, from the code the run runs
    assert (code.version, code.python) == ("23.09.11", "3.11.8")
    dev = next(op for op in r.ops if op.id == "devvenv")
    assert "python-default/3.11.8" in dev.detail


def test_the_pointers_left_are_named_with_what_they_break_other_architectures_counted() -> None:
    left = [
        lfs.Pointer("src/ai/backend/runner/su-exec.aarch64.bin", "a" * 64, 10, 0o644),
        lfs.Pointer("src/ai/backend/runner/tmux.aarch64.bin", "b" * 64, 10, 0o644),
        lfs.Pointer(
            "src/ai/backend/web/assets/backend.ai-local-proxy-linux-x64.zip", "c" * 64, 10, 0o644
        ),
    ]
    assert lfs.unresolved("/root/backend.ai", left, "x86_64") == [
        "3 Git LFS file(s) of /root/backend.ai are still pointers (neither git lfs nor the "
        "released wheels had them):",
        "  src/ai/backend/web/assets/backend.ai-local-proxy-linux-x64.zip: the web UI's "
        "local-proxy download",
        "  and 2 for aarch64: nothing uses them on this x86_64 host",
    ]


# --- the version a source brings, and the release line that follows it ---------------------------


def _monorepo(tmp_path: Path, name: str, version: str, python: str, branch: str) -> Repo:
    """A monorepo's branch with the files devkit reads from a source before cloning it."""
    r = Repo.init(tmp_path / name, tmp_path / "home", branch)
    pants = f'[python]\ninterpreter_constraints = ["CPython=={python}"]\n'
    r.commit("chore: a branch", {"pants.toml": pants, "VERSION": f"{version}\n"})
    return r


def _checkout_facts(**have: object) -> checkout.CheckoutFacts:
    return checkout.CheckoutFacts(**{**_NO_CHECKOUT, **have})  # type: ignore[arg-type]


def test_the_version_is_read_from_the_source_else_from_the_hosts_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = _monorepo(tmp_path, "main", "26.8.0rc1", "3.13.7", "main")
    bundle = tmp_path / "main.bundle"
    main.git("bundle", "create", str(bundle), "--all")
    none = _checkout_facts()
    for spec in (f"{main.path}@main", f"{bundle}@main", str(bundle)):
        assert checkout.code(spec, none, "x").version == "26.8.0rc1"
    assert checkout.code("pypi", none, "x").version == ""
    assert checkout.code("https://github.com/lablup/backend.ai@main", none, "x").version == ""
    # the host's checkout of that source is what runs (the contributor may have moved it there)
    mine = {"source": str(bundle.resolve()), "ref": "main"}
    moved = _checkout_facts(exists=True, version="26.9.0.dev0", recorded=mine)
    assert checkout.code(f"{bundle}@main", moved, "x").version == "26.9.0.dev0"
    by_hand = _checkout_facts(exists=True, version="26.9.0.dev0")  # adopted as it is
    assert checkout.code(f"{bundle}@main", by_hand, "x").version == "26.9.0.dev0"
    # a checkout of another source is switched: the new source's VERSION decides
    other = _checkout_facts(
        exists=True, version="23.09.11", recorded={"source": "x", "ref": "23.09"}
    )
    assert checkout.code(f"{bundle}@main", other, "x").version == "26.8.0rc1"
    monkeypatch.chdir(main.path)  # local: the commit pushed, unless the host has it already
    assert checkout.code("local", other, "x").version == "26.8.0rc1"
    head = main.git("rev-parse", "HEAD").strip()
    there = _checkout_facts(exists=True, head=head, version="26.8.0rc1+host")
    assert checkout.code("local", there, "x").version == "26.8.0rc1+host"


def _source_build(spec: str, **host: Any) -> Any:
    raw = fresh_raw(base="/srv/dk", **host)
    t = hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {})
    # a version set by hand does not move the line of a source
    over = {"backend_ai": {"source": spec, "version": "23.9.10"}}
    return desired.build(load_stack("backend.ai"), t, over, parsed(raw))


def test_the_release_line_follows_the_sources_version_not_the_version_setting(
    tmp_path: Path,
) -> None:
    main = _monorepo(tmp_path, "main", "26.8.0rc1", "3.13.7", "main")
    files = {f.id: f.content for f in _source_build(f"{main.path}@main").of("files")}
    agent = files["agent.toml"]
    assert 'initial-resource-group-name = "default"' in agent and "scaling-group" not in agent
    assert "allow-compute-plugins = []" in agent  # from source: no accelerator plugin loaded
    assert "internal-addr" in files["manager.toml"] and "apollo-router" in files["webserver.conf"]
    old = _monorepo(tmp_path, "old", "23.09.11", "3.11.8", "23.09")
    files = {f.id: f.content for f in _source_build(f"{old.path}@23.09").of("files")}
    assert 'scaling-group = "default"' in files["agent.toml"]
    assert "internal-addr" not in files["manager.toml"]


def test_a_source_of_no_line_is_refused_with_its_version_before_anything_changes(
    tmp_path: Path,
) -> None:
    r = _monorepo(tmp_path, "b", "24.03.5", "3.12.4", "24.03")
    with pytest.raises(DevkitError) as info:
        _source_build(f"{r.path}@24.03")
    assert info.value.message.startswith(
        f"Backend.AI 24.03.5 (the VERSION of {r.path}@24.03) is in no release line devkit runs"
    )
    assert "Run a branch of 23.09" in info.value.hint and "main" in info.value.hint


@pytest.mark.parametrize(
    ("version", "python", "branch", "host_os", "pythons", "needs", "hint"),
    [
        ("26.8.0rc1", "3.13.7", "main", "Debian 12", ["3.11"], "3.13", "--release trixie"),
        ("23.09.11", "3.11.8", "23.09", "Debian 13", ["3.13"], "3.11", "--release bookworm"),
    ],
)
def test_a_branch_on_a_host_without_its_python_is_refused_before_anything_changes(
    tmp_path: Path,
    version: str,
    python: str,
    branch: str,
    host_os: str,
    pythons: list[str],
    needs: str,
    hint: str,
) -> None:
    from devkit.provision.engine import run as engine
    from tests.fakehost import connector

    r = _monorepo(tmp_path, branch, version, python, branch)
    bundle = tmp_path / f"{branch}.bundle"
    r.git("bundle", "create", str(bundle), "--all")
    osinfo = {"id": "debian", "version": host_os[-2:], "name": host_os}
    vm = FakeHost("vm", fresh_raw(base="/srv/dk", os=osinfo, pythons=pythons))
    stack = load_stack("backend.ai")
    job = engine.Job(stack, hosts.Target("vm", "vm", "backend.ai", "/srv/dk", {}))
    over = {"backend_ai": {"source": f"{bundle}@{branch}"}}
    [res] = engine.run([job], engine.Options(over), connector({"vm": vm}), lambda e: None)
    assert res.status == "failed" and res.error.op == "checkout"
    assert res.error.detail == (
        f"the checkout (VERSION {version}) needs Python {needs} (its pants.toml asks for "
        f"CPython {python}); {host_os} has Python {pythons[0]}"
    )
    assert hint in res.error.hint
    assert vm.ops() == ["lock"]  # the facts, then nothing: no command, no file


def test_a_source_that_is_nowhere_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(DevkitError) as info:
        _source_build(str(tmp_path / "gone.bundle@main"))
    assert info.value.message.startswith(
        f"backend_ai.source: `{tmp_path / 'gone.bundle'}` is neither a git URL nor a bundle"
    )
