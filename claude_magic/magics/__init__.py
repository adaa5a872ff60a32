"""The ``%claude`` magic: its options, its commands, asking, comparing, and what it shows.

:class:`ClaudeMagics` is what ``%load_ext claude_magic`` registers.
"""

from .core import ClaudeMagics

__all__ = ["ClaudeMagics"]
