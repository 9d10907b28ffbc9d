"""The project's error hierarchy.

User errors (a bad spec, bad data, bad usage) carry where, what and how to fix it. Anything else
that escapes is a bug in cfs-semantic and is reported as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One validation finding: where it is, what is wrong and how to fix it."""

    message: str
    fix: str = ""
    file: str | None = None
    line: int | None = None
    key: str | None = None
    level: str = "error"

    def render(self) -> str:
        """Return the problem as one line: ``file:line: key: message. fix``."""
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        parts = [p for p in (where, self.key) if p]
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if not self.fix:
            return text
        fix = self.fix[0].upper() + self.fix[1:]
        return f"{text} {fix}" if text.endswith(("?", ".", "!")) else f"{text}. {fix}"


class CfsError(Exception):
    """Base class of every error cfs-semantic raises on purpose."""

    exit_code = 1


@dataclass
class SpecError(CfsError):
    """The spec is invalid; holds every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class DataError(CfsError):
    """The input data cannot be used (missing file, unparseable value, missing column)."""


class UsageError(CfsError):
    """The command line was used wrongly."""

    exit_code = 2


class EngineError(CfsError):
    """A SQL engine failed to start or to run a statement."""


class InternalError(CfsError):
    """A bug in cfs-semantic: the message says so and asks for a report."""

    exit_code = 1
