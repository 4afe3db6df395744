"""What every reader and writer shares: row ids, error messages, text decoding and atomic writes."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, Iterator

from dece.errors import DataError

PathLike = str | os.PathLike[str]


def default_id_prefix(path: PathLike) -> str:
    """The prefix of row ids when none is given: the file name up to its first dot (``train.csv`` -> ``train``)."""
    return Path(path).name.split(".", 1)[0] or "row"


def row_meta(prefix: str, index: int, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """A row's meta: ``id`` = ``f"{prefix}-{index}"`` (0-based index) unless the file stored one already."""
    return {"id": f"{prefix}-{index}", **(stored or {})}


def data_error(path: PathLike, row: int | str, field: str, problem: str) -> DataError:
    """The one error message shape of the readers: ``FILE: row N, field 'F': problem``."""
    return DataError(f"{path}: row {row}, field {field!r}: {problem}")


def decode_utf8(data: bytes, path: PathLike) -> str:
    """Bytes to text; invalid UTF-8 is reported with the line it sits on. A leading BOM is dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}: line {line}: not valid UTF-8 (byte {err.start})") from None


def read_text(path: PathLike) -> str:
    """The whole file as text, newlines untouched (no universal-newline translation)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror}") from None
    return decode_utf8(data, path)


def split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (code may contain form feeds or U+2028), a trailing ``\\r`` dropped.
    A final newline ends the last line rather than starting an empty one."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_meta(value: Any, path: PathLike, row: int | str, field: str = "meta") -> dict[str, Any]:
    """A stored ``meta`` (a dict, or a JSON object as text; empty means none) as a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise data_error(path, row, field, f"bad JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(value, dict):
        raise data_error(path, row, field, f"expected a JSON object, got {type(value).__name__}")
    return value


def dump_meta(meta: dict[str, Any]) -> str:
    """``meta`` as one line of JSON (non-ASCII kept as is)."""
    return json.dumps(meta, ensure_ascii=False)


@contextlib.contextmanager
def atomic_write(path: PathLike, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it over ``path`` only once the block succeeds and
    the data is on disk (flushed and fsynced), so a reader never sees a half-written file, even after a
    crash. Parent folders are created. The one atomic file writer of dece.

    A symbolic link is written through (its target is replaced, the link kept); a path that exists and is
    not a regular file (a FIFO, a device, a folder) is refused, never replaced.

    Raises:
        OSError: ``path`` cannot be written, or is not a regular file (the message names ``path``).
    """
    target = Path(os.path.realpath(path))  # through a symlink: the link stays, its target is written
    if target.exists() and not target.is_file():
        raise OSError(errno.EINVAL, "exists and is not a regular file (a folder, FIFO or device): not replaced",
                      str(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            handle = open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8", newline="")
        except OSError as err:  # name the file the user asked for, not our temporary one
            raise type(err)(err.errno, err.strerror, str(path)) from None
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yields a fresh hidden folder beside ``final``; when the block ends normally it replaces
    ``final`` in one rename, so ``final`` is never seen half-written (a kill leaves the old one, or
    none, plus a hidden ``.NAME.HOST.PID.*.partial`` folder, ignored by readers and removed by the next
    ``atomic_dir`` of ``final`` on that host once process PID is gone). An error in the block removes the
    temporary folder and propagates."""
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.{socket.gethostname()}."
    for stale in final.parent.glob(f"{glob.escape(prefix)}*.partial"):  # what a killed writer left
        pid = stale.name[len(prefix):].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{prefix}{os.getpid()}.", suffix=".partial"))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.{os.getpid()}.old.partial")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
