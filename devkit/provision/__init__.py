"""Provisioning engine: hosts and connections, stacks as data, facts, plan, apply, supervisord, sandbox.

Pure parts (hosts, stack, plan) import only the standard library; Fabric and Jinja2 load in
connect.py / render.py, which only the provisioning commands import.
"""
