"""The ``%claude`` and ``%%claude`` magics: a thin shell, as IPython's own magics are.

The magic parses its line with the declared options (:mod:`.options`, so ``%%claude?`` is
their help), then either runs a command (:mod:`.commands`) or asks (:mod:`.asking`). Settings
and state live in :class:`~.settings.ClaudeSettings`. User errors become one line, never a
traceback; nothing heavier than IPython itself is imported until first use.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class, no_var_expand

from ..api.errors import ClaudeError
from ..ui.wording import ClaudeMagicError
from .commands import commands_help, is_command, run_command
from .options import declared, keep_question_marks, split_cell_options, split_options
from .settings import ClaudeSettings


@magics_class
class ClaudeMagics(ClaudeSettings):
    """Ask Claude from a notebook cell."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        if shell is not None:
            shell.events.register("pre_run_cell", self.note_cell)
            shell.input_transformers_cleanup.append(keep_question_marks)
            self.notebook.install(shell)

    def close(self) -> None:
        """Unhook from the shell and close the HTTP clients."""
        if self.shell is not None:
            if self.note_cell in self.shell.events.callbacks["pre_run_cell"]:
                self.shell.events.unregister("pre_run_cell", self.note_cell)
            if keep_question_marks in self.shell.input_transformers_cleanup:
                self.shell.input_transformers_cleanup.remove(keep_question_marks)
        self.notebook.uninstall()
        self.session.close()

    @declared(epilog=commands_help())
    @no_var_expand  # {name} is ours to fill (and {{name}} a literal); IPython's $x and {x} are not
    @line_cell_magic
    def claude(self, line: str, cell: str | None = None) -> None:
        """Ask Claude; the answer streams into the cell as Markdown.

        A following question continues the same conversation; re-running a cell forks it
        there (its earlier exchange and what followed are set aside: %claude history --all). Examples::

            %claude What is a p-value?

            %%claude -m claude-haiku-5-5 -o answer
            Explain the difference between {df1_name} and {df2_name}.
        """
        if cell is None and is_command(line):
            return run_command(self, line)
        if cell is None:
            tokens, prompt = split_options(line, self._parser)
            args = self._parser.parse_args(tokens)
        else:
            args, prompt = self._parser.parse_args(split_cell_options(line)), cell
            if args.question:
                raise UsageError(f"unexpected text on the %%claude line: {' '.join(args.question)!r}; the question goes in the cell")
        from .asking import ask_question

        try:
            ask_question(self, args, prompt)
        except ClaudeError as error:  # attachments that can't be made: nothing was sent
            raise ClaudeMagicError(str(error)) from None

    @property
    def _parser(self) -> Any:
        """The options' parser, which ``magic_arguments`` puts on the magic at import."""
        return self.claude.parser

    def chat(self, side: bool = False) -> None:
        """Show the chat panel under the cell (``side``: in JupyterLab's side area, with sidecar)."""
        run_command(self, "chat --side" if side else "chat")
