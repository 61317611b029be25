"""gemma-lsp: a language server that serves AI help from a Gemma model running in-process."""

__version__ = "0.1.0"
