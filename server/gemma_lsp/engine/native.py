"""llama.cpp's process-wide set-up, shared by the in-process backend and the embedder.

llama.cpp logs through one global callback and llama-cpp-python's loader can redirect the
process's stdout; both matter to a server whose stdout is the LSP channel.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging

log = logging.getLogger(__name__)


def llama_cpp_available() -> bool:
    """True when llama-cpp-python is installed (benchmarks skip their native parts without it)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True

def build_info() -> tuple[str, str]:
    """llama-cpp-python's version and llama.cpp's system info line (its SIMD flags)."""
    import llama_cpp

    return getattr(llama_cpp, "__version__", "?"), llama_cpp.llama_print_system_info().decode(errors="replace")


# llama.cpp keeps a raw pointer to the log callback: the ctypes object must live as long as the
# process, or the next log line calls freed memory.
_LOG_CALLBACK = None


def silence_llama_logs() -> None:
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import llama_cpp

    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level in (2, 3):  # warnings and errors go to our log (a file or stderr), never stdout
            log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    _LOG_CALLBACK = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


def open_llama(**kwargs):
    """``llama_cpp.Llama(**kwargs)`` that never touches the process's stdout.

    With ``verbose=False``, llama-cpp-python silences llama.cpp by pointing file descriptors 1
    and 2 at /dev/null (dup2) for the whole load. That is process-wide: an LSP message the
    server writes to stdout from the event-loop thread meanwhile is lost, and the client
    waits forever for it. So load with ``verbose=True`` (llama.cpp's own logging is already
    routed to our log by :func:`_silence_llama_logs`) and catch the few lines the Python
    wrapper prints to ``sys.stderr`` into the debug log.
    """
    import llama_cpp

    silence_llama_logs()
    chatter = io.StringIO()
    with contextlib.redirect_stderr(chatter):
        llm = llama_cpp.Llama(verbose=True, **kwargs)
    for line in chatter.getvalue().splitlines():
        log.debug("llama-cpp-python: %s", line)
    return llm
