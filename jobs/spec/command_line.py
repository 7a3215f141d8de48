"""What becomes a task process's command line and environment, against the operating system's
limits: checked when a job is saved (with references standing in) and again by the worker once
they are resolved, so a task never fails with "Argument list too long"."""

# Linux refuses a single argument or environment string past MAX_ARG_STRLEN (128 KiB) and all
# of them past about 2 MiB; we keep well under both.
MAX_ARGUMENT_BYTES = 128 * 1024 - 1
MAX_COMMAND_LINE_BYTES = 1024 * 1024
COMMAND_LINE_FIELDS = {
    "spark_python_task": ("parameters",),
    "python_wheel_task": ("parameters", "named_parameters"),
    "shell_command_task": ("command", "parameters"),
    "dbt_task": ("commands",),
}


def command_line_problems(kind: str, block: dict) -> list[tuple[str, str]]:
    """(field, problem) for command-line strings of a task past the operating system's limits;
    the worker asks again once references are resolved."""
    problems, total = [], 0
    for name in COMMAND_LINE_FIELDS.get(kind, ()):
        value = block.get(name)
        items = ([(name, value)] if isinstance(value, str) else
                 [(f"{name}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, list) else
                 [(f"{name}.{k}", f"--{k}={v}") for k, v in value.items()] if isinstance(value, dict) else [])
        for where, text in items:
            size = len(text.encode("utf-8", "replace")) if isinstance(text, str) else 0
            total += size
            if size > MAX_ARGUMENT_BYTES:
                problems.append((where, f"is {size:,} bytes; a task's command or parameter may be at most "
                                        f"{MAX_ARGUMENT_BYTES:,} bytes (pass bigger data in a file)"))
    if total > MAX_COMMAND_LINE_BYTES:
        problems.append(("", f"the command line adds up to {total:,} bytes; at most {MAX_COMMAND_LINE_BYTES:,}"))
    return problems


def environment_problems(environment: dict) -> list[tuple[str, str]]:
    """(variable, problem) for environment strings past MAX_ARG_STRLEN, as for arguments."""
    return [(f"environment {name}", f"is {size:,} bytes with its value; at most {MAX_ARGUMENT_BYTES:,}")
            for name, value in environment.items()
            if (size := len(f"{name}={value}".encode("utf-8", "replace"))) > MAX_ARGUMENT_BYTES]
