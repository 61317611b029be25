"""Shaping text into edits, for completions, code actions and chat alike.

``lexing`` (brackets, strings and comments of five language families), ``indentation`` (a
document's style and restyling text to it), ``edits`` (the ``Edit`` value and line helpers).
Pure Python: imports only ``gemma_lsp.languages`` and the standard library.
"""
