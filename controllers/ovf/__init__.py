"""Reading OVF descriptors and OVA packages, and importing them as VDC objects.

`descriptor.py` parses the XML into `model.py`'s plain records (pure), `properties.py` types
and resolves ProductSection properties, `package.py` opens .ovf/.ova files and checks the
manifest, `mapping.py` turns the records into VirtualMachine / VirtualApp manifests (pure),
`upload.py` sends disk images through CDI's upload proxy, `command.py` is `vdcos import ovf`.
"""
