"""What the user sees: answers as safe Markdown or HTML, throttled renderers, the chat panel, and
the wording of footers and failures."""
