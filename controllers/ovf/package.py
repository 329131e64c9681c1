"""Opening an OVF package: an .ovf with its files beside it, or an .ova (a tar: the .ovf
first, then an optional .mf manifest and .cert, then the files). The manifest's SHA1 /
SHA256 / SHA512 lines are checked before anything is imported."""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import OvfError

_MANIFEST_LINE = re.compile(r"^\s*(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)\s*$")
_CHUNK = 1 << 20


@dataclass
class Package:
    """An opened package: its descriptor and a way to read the files it references."""

    path: Path
    descriptor_name: str
    descriptor: bytes
    manifest_name: str | None
    _members: dict[str, tarfile.TarInfo] | None  # an OVA's regular files by name

    @property
    def is_ova(self) -> bool:
        return self._members is not None

    def _local_path(self, href: str) -> Path:
        return self.path.parent / href

    def has(self, href: str) -> bool:
        if self._members is not None:
            return href in self._members
        return self._local_path(href).is_file()

    def size(self, href: str) -> int:
        if self._members is not None:
            return int(self._members[href].size)
        return self._local_path(href).stat().st_size

    @contextmanager
    def open(self, href: str) -> Iterator[IO[bytes]]:
        if self._members is None:
            with self._local_path(href).open("rb") as stream:
                yield stream
            return
        with tarfile.open(self.path) as archive:
            extracted = archive.extractfile(self._members[href])
            assert extracted is not None  # a regular member
            with extracted:
                yield extracted

    def where(self, href: str) -> str:
        return f"{self.path}:{href}" if self.is_ova else str(self._local_path(href))


def check_href(href: str, source: str) -> None:
    """A file the descriptor references must be a relative path inside the package."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", href):
        raise OvfError(f"{source}: file {href!r} is a URL; only files inside the package "
                       "are imported")
    parts = PurePosixPath(href).parts
    if href.startswith("/") or ".." in parts:
        raise OvfError(f"{source}: file {href!r} is outside the package")


def open_package(path: Path) -> Package:
    """The package at `path`, refused when it cannot be one: a missing file, an .ova that
    is not a tar, an .ova without an .ovf."""
    if not path.is_file():
        raise OvfError(f"{path}: no such file")
    if path.suffix.lower() == ".ova" or (path.suffix.lower() != ".ovf"
                                         and tarfile.is_tarfile(path)):
        return _open_ova(path)
    manifest = path.with_suffix(".mf")
    return Package(path=path, descriptor_name=path.name, descriptor=path.read_bytes(),
                   manifest_name=manifest.name if manifest.is_file() else None, _members=None)


def _open_ova(path: Path) -> Package:
    try:
        with tarfile.open(path) as archive:
            infos = archive.getmembers()
            members = {info.name.removeprefix("./"): info for info in infos if info.isfile()}
            descriptors = [name for name in members if name.lower().endswith(".ovf")]
            if not descriptors:
                raise OvfError(f"{path}: the OVA holds no .ovf descriptor")
            name = descriptors[0]
            extracted = archive.extractfile(members[name])
            assert extracted is not None
            descriptor = extracted.read()
    except tarfile.TarError as error:
        raise OvfError(f"{path}: not an OVA: it is not a tar archive ({error})") from None
    stem = PurePosixPath(name).stem
    manifest = next((m for m in members if m.lower() == f"{stem}.mf".lower()), None) or \
        next((m for m in members if m.lower().endswith(".mf")), None)
    return Package(path=path, descriptor_name=name, descriptor=descriptor,
                   manifest_name=manifest, _members=members)


def parse_manifest(text: str, source: str) -> list[tuple[str, str, str]]:
    """(algorithm, file name, lowercase hex digest) of each manifest line."""
    entries: list[tuple[str, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _MANIFEST_LINE.match(line)
        if found is None:
            raise OvfError(f"{source}, line {number}: not a manifest line "
                           "(expected 'SHA256(file)= hex')")
        entries.append((found[1], found[2].strip(), found[3].lower()))
    return entries


def check_manifest(package: Package) -> int:
    """Check every digest the manifest lists; returns how many were checked (0: none)."""
    if package.manifest_name is None:
        return 0
    with package.open(package.manifest_name) as stream:
        text = stream.read().decode("utf-8", errors="replace")
    source = package.where(package.manifest_name)
    entries = parse_manifest(text, source)
    for algorithm, name, expected in entries:
        if not package.has(name):
            raise OvfError(f"{source}: lists {name!r}, which the package does not hold")
        digest = hashlib.new(algorithm.lower())
        with package.open(name) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise OvfError(f"{package.where(name)}: {algorithm} checksum mismatch: the "
                           f"manifest says {expected}, the file has {digest.hexdigest()}")
    return len(entries)
