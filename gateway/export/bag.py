"""A BagIt bag (RFC 8493) serialised as one ZIP: `<bag>/bagit.txt`, `<bag>/bag-info.txt`,
`<bag>/data/...`, `<bag>/manifest-sha256.txt` and `<bag>/tagmanifest-sha256.txt`.

Written here rather than with `bagit.make_bag`, which builds a bag in place on disk and
changes the process's working directory while it does (os.chdir): not something a
worker thread may do. The bag is validated with the `bagit` library itself (see verify
and the tests). The ZIP is written beside its destination and renamed into place, so a
failed export never leaves half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Iterable

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
STORED = (".jpg", ".jpeg", ".png", ".gif", ".heic", ".webp", ".zip", ".gz", ".7z", ".mp4", ".mov", ".docx",
          ".xlsx", ".pptx", ".odt", ".ods")  # already compressed: deflating again only costs time


def _size(octets: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if octets < 1024 or unit == "GB":
            return f"{octets:.0f} {unit}" if unit == "B" else f"{octets:.1f} {unit}"
        octets /= 1024
    return f"{octets} B"


def _entry(archive: zipfile.ZipFile, name: str, data: bytes, at: datetime) -> None:
    info = zipfile.ZipInfo(name, date_time=at.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if name.lower().endswith(STORED) else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def write(destination: Path, bag_name: str, payload: Iterable[tuple[str, bytes]], info: list[tuple[str, str]], *,
          at: datetime) -> str:
    """Write the bag to `destination` (payload paths are relative to data/); returns the
    SHA-256 of the ZIP file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=".zip.part", dir=destination.parent)
    os.close(handle)
    try:
        manifest: list[tuple[str, str]] = []
        octets = 0
        with zipfile.ZipFile(temporary, "w", allowZip64=True) as archive:
            for path, data in payload:
                _entry(archive, f"{bag_name}/data/{path}", data, at)
                manifest.append((f"data/{path}", hashlib.sha256(data).hexdigest()))
                octets += len(data)
            tags = {"bagit.txt": BAGIT_TXT}
            lines = [*info, ("Bagging-Date", at.date().isoformat()), ("Payload-Oxum", f"{octets}.{len(manifest)}"),
                     ("Bag-Size", _size(octets))]
            tags["bag-info.txt"] = "".join(f"{label}: {' '.join(value.split())}\n" for label, value in lines).encode()
            tags["manifest-sha256.txt"] = "".join(f"{digest}  {path}\n" for path, digest in sorted(manifest)).encode()
            for name, data in tags.items():
                _entry(archive, f"{bag_name}/{name}", data, at)
            tagmanifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(tags.items()))
            _entry(archive, f"{bag_name}/tagmanifest-sha256.txt", tagmanifest.encode(), at)
        digest = file_sha256(Path(temporary))
        os.chmod(temporary, 0o640)
        os.replace(temporary, destination)
        return digest
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
