"""Chat: conversations about the workspace, streamed from the one engine, kept as memories."""

from .service import ChatResult, ChatService, ChatSettingsSource, Turn, TurnStore

__all__ = ["ChatResult", "ChatService", "ChatSettingsSource", "Turn", "TurnStore"]
