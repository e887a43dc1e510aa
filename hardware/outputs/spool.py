"""A write-ahead spool on disk: every line is appended (and fsync'd) before it is sent.

Two files in ``folder``: ``points.lp`` (line protocol, append-only) and ``sent.offset`` (how
many bytes of it the database has acknowledged, replaced atomically). Lines are sent in file
order, so a database that was away gets them in the order they were produced, and a process
that dies between appending and sending finds them again at its next start. Once everything is
sent the file is truncated, so the spool only grows while the database is unreachable.
"""

from __future__ import annotations

import os
from pathlib import Path


class Spool:
    """Append-only line store with an acknowledged offset. Not thread-safe: one writer thread owns it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "points.lp"
        self.offset_path = self.folder / "sent.offset"
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for appends
        self._sent = self._read_offset()
        self._size = self._file.tell()

    def _read_offset(self) -> int:
        try:
            text = self.offset_path.read_text().strip()
        except FileNotFoundError:
            return 0
        try:
            offset = int(text)
        except ValueError:
            raise ValueError(f"{self.offset_path}: not a byte offset: {text[:40]!r}") from None
        return min(max(offset, 0), self.path.stat().st_size)

    @property
    def pending_bytes(self) -> int:
        return self._size - self._sent

    def append(self, lines: list[str]) -> None:
        """Store ``lines`` durably (fsync'd) before anything tries to send them."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._size += len(data)

    def pending(self, max_bytes: int) -> tuple[bytes, int]:
        """Up to ``max_bytes`` of unsent whole lines (at least one line) and their length."""
        with open(self.path, "rb") as reader:
            reader.seek(self._sent)
            chunk = reader.read(max_bytes)
            if not chunk:
                return b"", 0
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:  # one line longer than max_bytes: send it whole
                chunk += reader.readline()
                cut = len(chunk)
        return chunk[:cut], cut

    def acknowledge(self, n_bytes: int) -> None:
        """The database stored the next ``n_bytes``: advance (and truncate once everything is sent)."""
        self._sent += n_bytes
        if self._sent >= self._size:
            self._file.truncate(0)
            self._file.seek(0)
            os.fsync(self._file.fileno())
            self._sent = self._size = 0
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(self._sent))
        os.replace(tmp, self.offset_path)

    def close(self) -> None:
        self._file.close()
