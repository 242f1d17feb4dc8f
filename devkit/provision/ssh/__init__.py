"""Reaching hosts: addresses, the connection protocol, SSH, remote commands, ssh_config."""
