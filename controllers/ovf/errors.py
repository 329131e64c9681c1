"""The one error the importer raises for bad input: it says what is wrong and where."""

from __future__ import annotations


class OvfError(ValueError):
    """Bad input: an OVF descriptor, an OVA package or a command-line value that cannot be
    imported. The message names the file, element or flag."""
