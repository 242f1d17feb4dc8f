"""Sandbox hosts: a real sshd on this machine, no VM (see lifecycle.py)."""
