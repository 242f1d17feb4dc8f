"""The edit loop ON THE HOST: standard library only, shipped as one script (ssh/ship.py).

    python3 -I -S devkit-edit.py changed REQUEST [--dry-run]   one look (restart --changed, sync)
    python3 -I -S devkit-edit.py watch RULES                    the watcher (a supervisord program)

RULES is the stack's `[edit]` group as provisioned (JSON). A service restarts when a file under the
paths it declares changed after its process started: the candidates come from the checkout's git
state (tracked and untracked files, .gitignore honoured), their times from the files (a deleted
file from its folder), the process's start from /proc (supervisord's own record has whole seconds
only). A changed Python file that does not compile keeps every service it would restart running as
it is. Decisions and restarts hold a lock, so the watcher, `restart --changed` and `sync` never
restart a service twice for one save. `watch` waits for saves with inotify (through ctypes; no
package needed) and falls back to polling the folders' times.

rules.py and report.py are pure; checkout.py, services.py, look.py, watch.py and find.py are the
checkout's, supervisord's, one look's, the watcher's and the stack's lookup; cli.py is the entry.
"""
