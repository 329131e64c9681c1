"""`vdcos up`: the embedded datacenter and the operator on a workstation, in one command.

Not part of the operator: the operator image holds `controllers/` and `kubekit/` only, and
`controllers/` never imports this package. The `vdcos` command finds `up` through the
`vdcos.commands` entry point this distribution registers.
"""
