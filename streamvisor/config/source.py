"""Reading the config file: a regular file of at most ``MAX_CONFIG_BYTES``, as bytes.

The one I/O of the config package. Anything else given as the config (a directory, a named
pipe, ``/dev/zero``, a socket) is refused before a byte is read, and at most the limit plus
one byte is ever read, so a wrong path cannot make ``check`` or ``run`` hang or fill memory.
"""

from __future__ import annotations

import os
import stat

from streamvisor.errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "read_source"]

MAX_CONFIG_BYTES = 10 << 20
"""10 MiB. A config is a few KiB; one with 10,000 streams of five keys each is about 1 MiB,
so the limit leaves room while refusing what cannot be a config (a log, a disk image)."""

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_source(source: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of the config file at ``source``.

    Args:
        source: the path, as given (it names the file in the errors).
        limit: most bytes accepted.

    Raises:
        ConfigError: one line: file not found, a directory or another file that is not a
            regular one, larger than ``limit``, or unreadable (with the system's reason).
    """
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (it is refused next).
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError("file not found", file=source) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a file", file=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=source) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError("is a directory, not a file", file=source)
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise ConfigError(
                f"is {kind}, not a regular file: give the path of a YAML file", file=source
            )
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # the file object closes it
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=source) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise ConfigError(
            f"larger than {_size(limit)}, the limit for a config file: is it the right file?",
            file=source,
        )
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n} bytes"
