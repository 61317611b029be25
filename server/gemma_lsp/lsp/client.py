"""A small editor-like LSP client that runs ``gemma-lsp serve`` as a child process over stdio.

The demo and the benchmarks drive the real server through it exactly as an editor would:
initialize, open a document, edit it, ask for completions, shut down.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from gemma_lsp import __version__, protocol
from gemma_lsp.uri import path_to_uri

from .values import plain

CLIENT_CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        synchronization=lsp.TextDocumentSyncClientCapabilities(did_save=True),
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(snippet_support=False),
        ),
        inline_completion=lsp.InlineCompletionClientCapabilities(dynamic_registration=False),
        code_action=lsp.CodeActionClientCapabilities(
            code_action_literal_support=lsp.ClientCodeActionLiteralOptions(
                code_action_kind=lsp.ClientCodeActionKindOptions(value_set=list(lsp.CodeActionKind))
            ),
            data_support=True,
            tag_support=lsp.CodeActionTagOptions(value_set=[lsp.CodeActionTag.LlmGenerated]),
        ),
    ),
    workspace=lsp.WorkspaceClientCapabilities(apply_edit=True),
    window=lsp.WindowClientCapabilities(work_done_progress=True, show_message=lsp.ShowMessageRequestClientCapabilities()),
)


def capabilities(resolve_edits: bool = False) -> lsp.ClientCapabilities:
    """The driver's capabilities; with ``resolve_edits`` code actions' edits come from codeAction/resolve."""
    if not resolve_edits:
        return CLIENT_CAPABILITIES
    caps = CLIENT_CAPABILITIES.text_document.code_action
    resolving = lsp.CodeActionClientCapabilities(
        code_action_literal_support=caps.code_action_literal_support, data_support=True,
        tag_support=caps.tag_support, resolve_support=lsp.ClientCodeActionResolveOptions(properties=["edit"]),
    )
    text = lsp.TextDocumentClientCapabilities(
        synchronization=CLIENT_CAPABILITIES.text_document.synchronization,
        completion=CLIENT_CAPABILITIES.text_document.completion,
        inline_completion=CLIENT_CAPABILITIES.text_document.inline_completion,
        code_action=resolving,
    )
    return lsp.ClientCapabilities(text_document=text, workspace=CLIENT_CAPABILITIES.workspace, window=CLIENT_CAPABILITIES.window)


@dataclass
class EditorSession:
    """One server process and the documents open in it."""

    settings: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None  # the workspace folder (None: no workspace)
    server_args: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    partial: dict[str, list[Any]] = field(default_factory=dict)  # partial results by token
    resolve_edits: bool = False  # ask code actions' edits through codeAction/resolve
    applied: list[lsp.WorkspaceEdit] = field(default_factory=list)  # what workspace/applyEdit brought
    last_partial: list[dict[str, Any]] = field(default_factory=list)  # the last chat's partial results
    model_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _client: LanguageClient | None = None
    _versions: dict[str, int] = field(default_factory=dict)

    async def start(self) -> lsp.InitializeResult:
        client = LanguageClient("gemma-lsp-driver", __version__)
        self._client = client
        # lsprotocol reads any code action that carries a command as a bare Command (its hook
        # only asks whether "command" is there); a Command's "command" is a string.
        client.protocol._converter.register_structure_hook(
            Union[lsp.Command, lsp.CodeAction],
            lambda obj, _: client.protocol._converter.structure(
                obj, lsp.Command if isinstance(obj.get("command"), str) else lsp.CodeAction
            ),
        )

        @client.feature(lsp.WINDOW_SHOW_MESSAGE)
        def show_message(params: lsp.ShowMessageParams) -> None:
            self.messages.append(params.message)

        @client.feature(lsp.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            self.applied.append(params.edit)
            return lsp.ApplyWorkspaceEditResult(applied=True)

        @client.feature(lsp.WINDOW_LOG_MESSAGE)
        def log_message(params: lsp.LogMessageParams) -> None:
            pass

        @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def create_progress(params: lsp.WorkDoneProgressCreateParams) -> None:
            return None

        @client.feature(lsp.PROGRESS)
        def on_progress(params: lsp.ProgressParams) -> None:
            value = params.value
            if isinstance(value, dict) and "kind" not in value:  # a partial result
                self.partial.setdefault(str(params.token), []).append(value)
                return
            kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
            title = value.get("title") or value.get("message") if isinstance(value, dict) else None
            self.progress.append(f"{kind}: {title or ''}".strip())
            if kind == "end":
                self.model_ready.set()

        await client.start_io(sys.executable, "-m", "gemma_lsp", "serve", *self.server_args)
        result = await client.initialize_async(
            lsp.InitializeParams(
                capabilities=capabilities(self.resolve_edits),
                process_id=None,
                root_uri=file_uri(self.root) if self.root is not None else None,
                initialization_options={"gemma": self.settings},
            )
        )
        client.initialized(lsp.InitializedParams())
        return result

    @property
    def client(self) -> LanguageClient:
        assert self._client is not None, "call start() first"
        return self._client

    def change_settings(self, settings: dict[str, Any]) -> None:
        """``workspace/didChangeConfiguration`` with ``{"gemma": settings}``."""
        self.client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"gemma": settings}))

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self._versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)
            )
        )

    def replace_all(self, uri: str, text: str) -> None:
        self._versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri]),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        pos = lsp.Position(line=line, character=character)
        self.edit(uri, lsp.Range(start=pos, end=pos), text)

    def edit(self, uri: str, rng: lsp.Range, text: str) -> None:
        """Replace ``rng`` with ``text`` (an incremental didChange, as editors send)."""
        self._versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri]),
                content_changes=[lsp.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    def replace(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        """Replace the text from ``start`` to ``end`` (each ``(line, character)``) with ``text``."""
        rng = lsp.Range(start=lsp.Position(line=start[0], character=start[1]), end=lsp.Position(line=end[0], character=end[1]))
        self.edit(uri, rng, text)

    def send_inline(self, uri: str, line: int, character: int, msg_id: str) -> asyncio.Future:
        """An inline completion request with our own id (so it can be cancelled), not awaited."""
        params = lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=line, character=character),
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
        )
        return asyncio.ensure_future(
            self.client.protocol.send_request_async(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
        )

    def cancel_request(self, msg_id: str) -> None:
        """``$/cancelRequest`` for a request this session sent."""
        self.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))

    async def inline(self, uri: str, line: int, character: int) -> lsp.InlineCompletionList | None:
        return await self.client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
                context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
            )
        )

    async def complete(self, uri: str, line: int, character: int) -> Any:
        return await self.client.text_document_completion_async(
            lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
            )
        )

    async def execute(self, command: str, argument: dict[str, Any] | None = None) -> Any:
        """``workspace/executeCommand`` with one object argument; the result as plain values."""
        params = lsp.ExecuteCommandParams(command=command, arguments=[argument] if argument is not None else None)
        return plain(await self.client.workspace_execute_command_async(params))

    async def request(self, method: str, params: Any = None) -> Any:
        """A request by name (``protocol.py``), the answer as plain values."""
        return plain(await self.client.protocol.send_request_async(method, params))

    async def chat(self, message: str, **params: Any) -> tuple[dict[str, Any], list[str]]:
        """One ``gemma/chat`` turn, streamed: the result and the text pieces as they came."""
        token = f"chat-{len(self.partial)}-{time.monotonic_ns()}"
        self.partial[token] = []
        result = await self.request(
            protocol.CHAT, {"message": message, **params, "partialResultToken": token, "workDoneToken": token + "-w"}
        )
        self.last_partial = self.partial.pop(token)
        return result, [p["text"] for p in self.last_partial]

    async def code_actions(self, uri: str, rng: lsp.Range, diagnostics: list[lsp.Diagnostic] = ()) -> list[lsp.CodeAction]:
        params = lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), range=rng,
            context=lsp.CodeActionContext(diagnostics=list(diagnostics)),
        )
        return await self.client.text_document_code_action_async(params) or []

    async def stats(self) -> dict[str, Any]:
        result = await self.client.protocol.send_request_async(protocol.STATS, None)
        return plain(result)

    async def wait_until_loaded(self, timeout: float = 300.0) -> dict[str, Any]:
        """Poll ``gemma/stats`` until the model is loaded or failed to load."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            if stats.get("loaded") or stats.get("load_error"):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError("the model did not load in time")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._client is None:
            return
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        finally:
            await self.client.stop()
            self._client = None


def file_uri(path: str | Path) -> str:
    return path_to_uri(path)
