"""Kubernetes names for what OVF names freely ("VM Network", "Web Server 01")."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63


def dns_label(*parts: str, max_length: int = MAX_LABEL) -> str:
    """`parts` joined with '-' as a DNS label: lowercase, [a-z0-9-], at most `max_length`
    characters (a long name is cut and ends with a hash of the whole, so two stay apart)."""
    joined = "-".join(parts)
    label = re.sub(r"[^a-z0-9]+", "-", joined.lower()).strip("-") or "x"
    if len(label) <= max_length:
        return label
    digest = hashlib.sha256(joined.encode()).hexdigest()[:6]
    return f"{label[:max_length - 7].rstrip('-')}-{digest}"


def unique(name: str, taken: set[str], max_length: int = MAX_LABEL) -> str:
    """`name`, or `name-2`, `name-3`... the first not in `taken` (which it joins)."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = dns_label(name, str(number), max_length=max_length)
    taken.add(candidate)
    return candidate
