"""Memory settings live in ``gemma_lsp.config.memory`` (so ``Settings`` can hold them); re-exported here."""

from gemma_lsp.config.memory import IndexSettings, MemorySettings, TierTTLs, default_cache_dir

__all__ = ["IndexSettings", "MemorySettings", "TierTTLs", "default_cache_dir"]
