"""The edit loop from this machine: restart what changed, the watcher, VS Code."""
