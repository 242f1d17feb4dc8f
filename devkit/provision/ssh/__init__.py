"""Reaching hosts: addresses, the connection protocol, SSH, remote commands, ssh_config."""

import sys

# paramiko (client.py) imports invoke, a quarter of a no-op provision's imports, only for
# ssh_config's `Match exec`; devkit reads ssh_config through OpenSSH (`ssh -G`), never paramiko
sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
