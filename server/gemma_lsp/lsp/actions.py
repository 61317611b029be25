"""Code actions: "Ask Gemma about this…", "Explain", "Fix", "Add documentation", "Write tests".

Listing them is instant (no model work). Fix, document and tests edit the document: the model
runs when the user picks the action, with work-done progress the user can cancel, and the
result is one ``workspace/applyEdit`` of minimal text edits (unchanged lines, and the cursor on
them, stay put), or the ``edit`` of ``codeAction/resolve`` for clients that resolve edits. Ask
and explain answer as a chat turn seeded with the selection.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from gemma_lsp import protocol
from gemma_lsp.actions import ACTIONS, ActionSpec, NoChange, OutsideSelection, actions_for
from gemma_lsp.errors import ModelUnavailable
from gemma_lsp.prompts import PromptError

from .chat import ChatFeature
from .feature import LanguageFeature, command, request
from .prompts import prompt_inputs
from .values import plain, selected_text

_BY_ID = {spec.id: spec for spec in ACTIONS}
_QUESTIONS = {"ask": "What does this code do, and is anything in it wrong or risky?", "explain": "Explain this code."}


class CodeActionFeature(LanguageFeature):
    name = "code actions"

    @request(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.Refactor,
                               lsp.CodeActionKind.RefactorRewrite, lsp.CodeActionKind.RefactorExtract],
            resolve_provider=True,
        ),
    )
    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri, rng = params.text_document.uri, params.range
        if self.server.documents.get(uri) is None:
            return []
        diagnostics = list(params.context.diagnostics or [])
        selected = (rng.start.line, rng.start.character) != (rng.end.line, rng.end.character)
        only = params.context.only
        offered = []
        for spec in actions_for(selected, bool(diagnostics)):
            if only and not any(spec.kind == k or spec.kind.startswith(f"{k}.") for k in only):
                continue
            target = rng if selected else diagnostics[0].range
            argument = {
                "action": spec.id, "uri": uri,
                "range": {"start": _pos(target.start), "end": _pos(target.end)},
                "diagnostics": [self._diagnostic(d) for d in diagnostics] if spec.id == "fix" else [],
            }
            action = lsp.CodeAction(title=spec.title, kind=spec.kind, diagnostics=diagnostics if spec.id == "fix" else None)
            if self._tags_supported():
                action.tags = [lsp.CodeActionTag.LlmGenerated]
            if spec.edits and self._resolves_edits():
                action.data = argument
            else:
                action.command = lsp.Command(title=spec.title, command=protocol.ACTION_RUN, arguments=[argument])
            offered.append(action)
        return offered

    @request(lsp.CODE_ACTION_RESOLVE)
    async def resolve(self, action: lsp.CodeAction) -> lsp.CodeAction:
        argument = plain(action.data) if action.data is not None else None
        if not isinstance(argument, dict) or _BY_ID.get(argument.get("action")) is None:
            return action  # not one of ours, or nothing to resolve
        edit = await self._edit(protocol.ACTION_RUN, argument)
        action.edit = edit
        return action

    @command(protocol.ACTION_RUN)
    async def run(self, arg: dict) -> dict:
        spec = _BY_ID.get(arg.get("action"))
        if spec is None:
            raise JsonRpcInvalidParams(
                f"{protocol.ACTION_RUN}: action must be one of {', '.join(_BY_ID)}, got {arg.get('action')!r}."
            )
        if not isinstance(arg.get("uri"), str) or not arg["uri"]:
            raise JsonRpcInvalidParams(f"{protocol.ACTION_RUN} needs uri: the open document the action is about.")
        if arg.get("range") is None:
            raise JsonRpcInvalidParams(f"{protocol.ACTION_RUN} needs range: the selection the action is about.")
        question = arg.get("question")
        if question is not None and not isinstance(question, str):
            raise JsonRpcInvalidParams(f"{protocol.ACTION_RUN}: question must be a string.")
        if not spec.edits:
            chat = next(f for f in self.server.features if isinstance(f, ChatFeature))
            message = question or _QUESTIONS[spec.id]
            return await chat.chat_command({**arg, "message": message, "template": spec.template})
        edit = await self._edit(protocol.ACTION_RUN, arg)
        result = await self.server.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=edit, label=spec.title))
        if not result.applied:
            raise JsonRpcInternalError(f"The editor did not apply the edit: {result.failure_reason or 'no reason given'}.")
        return {"applied": True, "edits": len(edit.document_changes[0].edits)}

    # -------------------------------------------------------------- generation
    async def _edit(self, name: str, arg: dict) -> lsp.WorkspaceEdit:
        spec = _BY_ID[arg["action"]]
        uri = arg.get("uri")
        doc = self.server.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            raise JsonRpcInvalidParams(f"{name}: {uri} is not open.")
        problems = "; ".join(d.get("message", "") for d in arg.get("diagnostics") or [] if isinstance(d, dict))
        inputs = prompt_inputs(self.server, name, {**arg, "question": problems or arg.get("question") or ""})
        text, version = doc.text, doc.version
        selected_text(self.server.documents, name, uri, arg.get("range"))  # one sentence for a bad range
        rng = plain(arg["range"])
        start = doc.offset_at(lsp.Position(**rng["start"]))
        end = doc.offset_at(lsp.Position(**rng["end"]))
        start, end = min(start, end), max(start, end)
        token = f"gemma-lsp/action/{uuid.uuid4()}"
        progress = await self.server.begin_progress(token, spec.title, cancellable=True)
        task = asyncio.current_task()
        future = self.server.work_done_progress.tokens.get(token) if progress else None
        if future is not None and task is not None:
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel))
        outcome = "cancelled"
        try:
            changes = await self.services.actions.edits(spec, text, start, end, doc.language_id, inputs)
            outcome = f"{len(changes)} edit(s)"
        except (NoChange, OutsideSelection, PromptError) as exc:
            outcome = "no change"
            raise JsonRpcInvalidParams(f"{name}: {exc}") from None
        except ModelUnavailable as exc:
            outcome = "failed"
            self.server.report_unavailable(exc)
            raise JsonRpcInternalError(str(exc)) from None
        finally:
            if progress:
                self.server.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=outcome))
                self.server.work_done_progress.tokens.pop(token, None)
        if self.server.documents.get(uri) is not doc or doc.text is not text:
            raise JsonRpcInvalidParams(f"{name}: {uri} changed while Gemma worked; run the action again.")
        edits = [lsp.TextEdit(range=lsp.Range(start=doc.position_at(c.start), end=doc.position_at(c.end)), new_text=c.text)
                 for c in changes]
        return lsp.WorkspaceEdit(document_changes=[
            lsp.TextDocumentEdit(text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                                 edits=edits)
        ])

    # ---------------------------------------------------------- capabilities
    def _code_action_caps(self):
        caps = self.server.client_capabilities
        return caps.text_document.code_action if caps and caps.text_document else None

    def _resolves_edits(self) -> bool:
        caps = self._code_action_caps()
        support = caps.resolve_support if caps else None
        return bool(support and "edit" in (support.properties or []))

    def _tags_supported(self) -> bool:
        caps = self._code_action_caps()
        tags = caps.tag_support if caps else None
        return bool(tags and lsp.CodeActionTag.LlmGenerated in (tags.value_set or []))

    def _diagnostic(self, diagnostic: lsp.Diagnostic) -> dict[str, Any]:
        return {"message": diagnostic.message, "range": {"start": _pos(diagnostic.range.start), "end": _pos(diagnostic.range.end)}}


def _pos(position: lsp.Position) -> dict[str, int]:
    return {"line": position.line, "character": position.character}
