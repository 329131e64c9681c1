"""Kubernetes names for what OVF names freely ("VM Network", "Web Server 01")."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63


def dns_label(*parts: str) -> str:
    """`parts` joined with '-' as a DNS label: lowercase, [a-z0-9-], at most 63 characters
    (a long name is cut and ends with a hash of the whole, so two stay apart)."""
    joined = "-".join(parts)
    label = re.sub(r"[^a-z0-9]+", "-", joined.lower()).strip("-") or "x"
    if len(label) <= MAX_LABEL:
        return label
    digest = hashlib.sha256(joined.encode()).hexdigest()[:6]
    return f"{label[:MAX_LABEL - 7].rstrip('-')}-{digest}"


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`... the first not in `taken` (which it joins)."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = dns_label(name, str(number))
    taken.add(candidate)
    return candidate
