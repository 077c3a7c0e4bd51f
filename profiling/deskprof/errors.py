"""User mistakes, as one exception family.

The CLI catches ``DeskprofError`` once at the top and prints its message as one line
with its exit code; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class DeskprofError(Exception):
    """A mistake the user can fix; ``str()`` says what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NoSuchProcess(DeskprofError):
    """The PID given does not exist (or exited before the capture started)."""


class PermissionDenied(DeskprofError):
    """The OS refused to let us look into the target (ptrace)."""


class ToolMissing(DeskprofError):
    """py-spy, memray or gdb is not installed or not usable for this target."""


class TargetUnreachable(DeskprofError):
    """The target URL does not answer."""


class BundleError(DeskprofError):
    """A capture bundle is missing, truncated or of an unknown schema version."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name when it has none): what a
    one-line error quotes of a library's exception."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class OptionError(DeskprofError):
    """A bad option value. The message is a template naming options as ``{field}``: the
    library renders each as its keyword (``duration_s``), the CLI as its flag
    (``--duration``, via :meth:`for_flags`), so neither speaks the other's language."""

    def __init__(self, template: str, *options: str, exit_code: int | None = None) -> None:
        self.template = template
        self.options = options
        super().__init__(self._render({name: name for name in options}), exit_code=exit_code)

    def for_flags(self, flags: dict[str, str]) -> str:
        """The message with each option named as the CLI flag ``flags`` maps it to."""
        return self._render({name: flags.get(name, name) for name in self.options})

    def _render(self, names: dict[str, str]) -> str:
        # replace, not str.format: the message also quotes the user's values (a URL with
        # "{id}" in it, a path), whose braces must come out as they went in
        text = self.template
        for option, shown in names.items():
            text = text.replace("{" + option + "}", shown)
        return text
