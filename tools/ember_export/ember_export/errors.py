"""Errors raised by the exporter (no torch import, so the writer works without torch)."""
from typing import List


class UnsupportedOpsError(RuntimeError):
    """Raised when a module uses ops ember cannot run; `ops` lists them by name."""

    def __init__(self, ops: List[str]):
        self.ops = list(ops)
        super().__init__("ember cannot run these ops of the module: " + ", ".join(self.ops))
