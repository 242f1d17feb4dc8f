"""The edit loop's test repository: two services run from the checkout with PYTHONPATH=src, each
answering HTTP with its own module's ANSWER and the shared `common` package's GREETING; alpha binds
its port with SO_REUSEPORT (a restart overlaps it), beta without (a restart stops it first); alpha
alone imports common.extra."""

from __future__ import annotations

import subprocess
from pathlib import Path

FILES = {
    ".gitignore": "__pycache__/\n*.pyc\n/dist/\n/.vscode/\n",
    "README.md": "A test project for devkit's edit loop.\n",
    "src/common/__init__.py": 'GREETING = "hello"\n',
    "src/common/web.py": '''"""A tiny HTTP service: GET /health, and GET / with the service's answer as JSON. With
reuse_port its port is bound with SO_REUSEPORT, as Backend.AI's servers bind theirs; TERM ends it
gracefully (no new connections, the requests it has are answered), as aiohttp's runner does."""

import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import common

PAGES = Path(__file__).resolve().parent.parent / "pages"


def serve(name, answer, reuse_port=False):
    port = int(sys.argv[1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                body = b"ok"
            else:
                page = (PAGES / "motd.txt").read_text().strip()
                data = {"service": name, "answer": answer(), "greeting": common.GREETING,
                        "pid": os.getpid(), "page": page}
                body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = False  # a request in flight is answered before the process ends
        block_on_close = True

        def server_bind(self):
            if reuse_port:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    server = Server(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
''',
    "src/alpha/__init__.py": "",
    "src/common/extra.py": 'NOTE = "only alpha imports this module"\n',
    "src/alpha/server.py": """from common import extra
from common.web import serve

ANSWER = "alpha-1"

if __name__ == "__main__":
    serve("alpha", lambda: ANSWER, reuse_port=True)
""",
    "src/beta/__init__.py": "",
    "src/beta/server.py": """from common.web import serve

ANSWER = "beta-1"

if __name__ == "__main__":
    serve("beta", lambda: ANSWER)
""",
    "src/pages/motd.txt": "welcome\n",
}

ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    r = subprocess.run(
        ["git", "-C", str(repo), *args],
        env={**env, **ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr}")
    return r.stdout


def build(where: Path) -> Path:
    """A bare repository (the project's remote) with one commit on main; returns its path."""
    work = where / "seed"
    for rel, text in FILES.items():
        p = work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(work.parent, "init", "-q", "-b", "main", str(work))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "feat: two services and a shared package")
    bare = where / "project.git"
    git(where, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def clone(bare: Path, dest: Path) -> Path:
    """A contributor's clone (their laptop)."""
    git(bare.parent, "clone", "-q", str(bare), str(dest))
    return dest
