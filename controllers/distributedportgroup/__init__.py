"""The DistributedPortGroup kind: a VLAN (or trunk) on a DistributedSwitch with MTU, port
security and shaping, realised as a Multus NetworkAttachmentDefinition per admitted namespace."""
