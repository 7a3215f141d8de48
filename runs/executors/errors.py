"""Errors shared by the launchers of every task type (standard library only)."""


class LaunchError(Exception):
    """The attempt cannot start; the worker fails the task with this code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code  # "RESOURCE_NOT_FOUND" or "INVALID_RUN_CONFIGURATION"
        self.message = message
