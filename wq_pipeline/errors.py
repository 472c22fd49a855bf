"""Errors the user can fix. The CLI turns :class:`InputError` into exit code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the file, column, row or timestamp at fault
    and what was expected. Raised before anything is written to the output folder."""
