"""Exceptions with messages that name the file, row, field or key at fault."""

from __future__ import annotations


class DeceError(Exception):
    """Base class of every error dece raises on purpose."""


class ConfigError(DeceError, ValueError):
    """A config key is unknown or its value is out of range; the message names the key."""


class DataError(DeceError, ValueError):
    """An input file is malformed; the message names the file, the row and the field."""


class UnknownNameError(DeceError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
