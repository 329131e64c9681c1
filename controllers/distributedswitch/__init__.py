"""The DistributedSwitch kind: a Linux bridge over bonded uplinks on every host of a cluster,
realised as one nmstate NodeNetworkConfigurationPolicy."""
