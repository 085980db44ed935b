"""Untrusted code (a student's code answer) runs only here: `runner` starts and supervises a separate,
resource-limited, network-less process, and `child` is the program that process runs before and
around the code; docs/security.md gives the threat model."""

from acqsynth.sandbox.runner import SandboxResult, isolation, new_token, run_many, run_python

__all__ = ["SandboxResult", "isolation", "new_token", "run_many", "run_python"]
