"""Prompt templates over LSP: list them, and render one exactly as the model would receive it.

``gemma.prompt.render`` fills a template in for the selection ``range`` of the open document
``uri`` (or ``text``), with ``rag_context`` and ``rag_recent`` from the workspace's memories.
Template authors use it to see what a prompt really says; the code actions and chat render
through the same path (``Services.render``). Templates are re-read whenever their files change.
"""

from __future__ import annotations

from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp import protocol
from gemma_lsp.prompts import PromptError, PromptInputs

from .feature import LanguageFeature, command
from .values import selected_text


class PromptsFeature(LanguageFeature):
    name = "prompts"

    @command(protocol.PROMPT_LIST)
    async def list_prompts(self, arg: dict) -> list[dict]:
        try:
            return self.services.prompts.status()
        except PromptError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @command(protocol.PROMPT_RENDER)
    async def render(self, arg: dict) -> dict:
        name = arg.get("template")
        if not isinstance(name, str) or not name:
            raise JsonRpcInvalidParams(
                f"{protocol.PROMPT_RENDER} needs template: the name of a prompt template (see {protocol.PROMPT_LIST})."
            )
        inputs = prompt_inputs(self.server, protocol.PROMPT_RENDER, arg)
        try:
            rendered = await self.services.render(name, inputs)
        except PromptError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        return rendered.to_json()


def prompt_inputs(server, name: str, arg: dict) -> PromptInputs:
    """A template's inputs from ``{uri?, range?, text?, question?}``: the selection of an open
    document (or ``text``), its path and language; one clear error for each bad value."""
    question = arg.get("question") or ""
    if not isinstance(question, str):
        raise JsonRpcInvalidParams(f"{name}: question must be a string.")
    uri = arg.get("uri")
    text, start_line, end_line, path, language = arg.get("text") or "", 0, 0, "", ""
    if not isinstance(text, str):
        raise JsonRpcInvalidParams(f"{name}: text must be a string.")
    if uri is not None and not isinstance(uri, str):
        raise JsonRpcInvalidParams(f"{name}: uri must be a string.")
    if uri:
        doc = server.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"{name}: {uri} is not open.")
        path, language = server.display_path(uri) or uri, doc.language_id
        if arg.get("range") is not None and not text:
            text, start_line, end_line = selected_text(server.documents, name, uri, arg["range"])
    elif arg.get("range") is not None:
        raise JsonRpcInvalidParams(f"{name}: a range needs the uri of the open document it is in.")
    return PromptInputs(
        selection=text, question=question, path=path, language=language, start_line=start_line,
        end_line=end_line, uri=uri or "",
    )
