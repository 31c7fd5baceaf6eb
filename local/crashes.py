"""Function process crashes, read from the cargo lambda watch log (stdlib only: the stack,
the load smoke and the soak all ask)."""

from __future__ import annotations

from pathlib import Path

LOG = Path(__file__).resolve().parent.parent / ".local" / "logs" / "cargo-lambda.log"

# What the log says when a function process dies: the Rust panic message the process prints,
# and cargo lambda's own "command exited" for a process that ended (watcher.rs:168-186).
CRASH_MARKERS = ("panicked at", "command exited")


def function_crashes(log: Path = LOG) -> list[str]:
    """Lines of the cargo lambda log that say a function process died. Lambda replaces a
    crashed sandbox; cargo lambda does not, so every one of these is a function that stops
    answering, and a test run or soak that saw one has failed."""
    if not log.exists():
        return []
    return [line.strip() for line in log.read_text(errors="replace").splitlines()
            if any(marker in line for marker in CRASH_MARKERS)]
