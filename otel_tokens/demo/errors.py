"""What a failing demo step raises: the one line the user sees."""

from __future__ import annotations


class DemoError(RuntimeError):
    """A step failed; the message is the one line shown to the user."""
