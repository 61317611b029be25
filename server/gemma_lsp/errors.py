"""The one small error hierarchy; ``lsp/`` turns these into JSON-RPC errors or window messages."""


class GemmaLspError(Exception):
    """Base class of every error this project raises on purpose."""


class ModelUnavailable(GemmaLspError):
    """The model could not be loaded (missing, unreadable, not a Gemma GGUF) or is not loaded."""


class Cancelled(GemmaLspError):
    """The work was cancelled: by the client, or because a newer request overtook it."""


class ConfigError(GemmaLspError):
    """A setting is invalid; the message names the key and the reason."""


class PromptTooLong(GemmaLspError, ValueError):
    """A prompt (the user's text and selection with the template) does not fit the model's context."""
