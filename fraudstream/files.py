"""Writing a small file atomically: readers see the old content or the new one, never a part.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "sub" / "state.json"
>>> write_atomic(p, '{"a": 1}')
>>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
('{"a": 1}', ['state.json'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` to a temporary file next to ``path`` and rename it over ``path`` (creating
    the folder). ``durable``: fsync before the rename, so the new content survives a crash of
    the machine (registry pointers); without it a crash may leave the old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
