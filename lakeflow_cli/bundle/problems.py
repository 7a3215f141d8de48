"""Problems found in a bundle, each with the file and line it comes from."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int = 1

    def __str__(self):
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    message: str
    location: Location | None = None
    path: str = ""  # the dotted configuration path, e.g. resources.jobs.etl.tasks[0].task_key
    severity: str = "error"  # or "warning"

    def __str__(self):
        lines = [f"{self.severity.capitalize()}: {self.message}"]
        if self.location is not None:
            lines.append(f"  at {self.path or '(root)'}" if self.path else "")
            lines.append(f"  in {self.location}")
        elif self.path:
            lines.append(f"  at {self.path}")
        return "\n".join(line for line in lines if line)


class BundleError(Exception):
    """Stops a command before it changes anything; carries every problem found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def errors(problems):
    return [p for p in problems if p.severity == "error"]
