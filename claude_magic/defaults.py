"""The defaults of the package's settings that belong to layers ``%load_ext`` doesn't need yet.

The magic's settings (``ClaudeMagics.*``, traitlets) declare their defaults when the extension
loads; the modules these numbers govern (jobs over rows, batches, server tools, attachments, the
renderer) load with the first question that uses them. Kept here, importing nothing, so that
loading the magic doesn't load them (``bench/startup.py`` measures it); each of those modules
takes its default from here.
"""

DEFAULT_ATTACHMENT_CHARS = 20_000
"""Characters one attached object's text may take (a DataFrame's summary, a string)."""
DEFAULT_BATCH_ABOVE_ROWS = 5_000
"""Rows to send above which a job goes as a Message Batch unless told otherwise (row by row, 5,000
rows take about 20 minutes at 8 in flight; a batch, most often less than an hour, at half the price)."""
DEFAULT_CONCURRENCY = 8
"""Requests a job over rows has in flight at once."""
DEFAULT_WEB_MAX_USES = 5
"""Web searches (and, apart, page fetches) one request may make."""
DEFAULT_MAX_TOOL_ROUNDS = 8
"""Rounds of tool calls before an answer stops."""
DEFAULT_REFRESH_RATE = 10.0
"""Most redraws a second while an answer streams."""
