"""Provisioning: bring hosts to a stack's desired state over SSH, then operate and edit what runs.

The wings, by who runs the code (each imports only the wings below it):

    editloop/  here: the edit loop's commands (restart what changed, the watcher, VS Code)
    engine/    here: a provisioning run (facts -> desired -> plan -> apply -> report) and
               operating what it provisioned (status, start, stop, logs, teardown)
    kinds/     here: the resource kinds, one module each, and their registry
    transfer/  here: what this machine makes or packs and sends to a host (a branch, wheels,
               container image roots)
    stack/     here: a stack as data (stack.toml, variables and their types, templates) and where
               it lives on a host
    ssh/       here: reaching hosts (addresses, the connection protocol over SSH, remote commands)
    onhost/    ON THE HOST: standard library only, no devkit imports; shipped as source

Sandbox hosts, which this package provisions like any other host, are a peer: devkit.sandbox.
"""
