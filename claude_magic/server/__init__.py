"""The Jupyter Server half of claude-magic: key custody, one rate limiter and one ledger for every kernel.

Nothing here is imported by the kernel side (``import claude_magic`` stays cheap); this package may use
``claude_magic.api`` and ``claude_magic.core``, never the magics, the display or the attachments.
"""
