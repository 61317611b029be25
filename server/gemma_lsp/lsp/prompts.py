"""Prompt templates over LSP: list them, and render one exactly as the model would receive it.

Commands (``workspace/executeCommand``):

- ``gemma.prompt.list`` (no argument): every template with its file, description, variables and
  the error that stops it, if any.
- ``gemma.prompt.render`` ``{template, uri?, range?, text?, question?}``: the template filled in
  for the selection ``range`` of the open document ``uri`` (or ``text``), with ``rag_context`` and
  ``rag_recent`` from the workspace's memories. Template authors use it to see what a prompt
  really says; the code actions and chat render through the same path.

Templates are re-read whenever their files change, so an edit shows up on the next command.
"""

from __future__ import annotations

import logging

from pygls.exceptions import JsonRpcInvalidParams

from gemma_lsp.memory import MemoryUnavailable
from gemma_lsp.prompts import PromptError, PromptInputs, render_prompt

from .server import GemmaLanguageServer
from .values import command_argument, selected_text

log = logging.getLogger(__name__)

LIST = "gemma.prompt.list"
RENDER = "gemma.prompt.render"


async def render_for(ls: GemmaLanguageServer, command: str, arg: dict) -> dict:
    name = arg.get("template")
    if not isinstance(name, str) or not name:
        raise JsonRpcInvalidParams(f"{command} needs template: the name of a prompt template (see {LIST}).")
    question = arg.get("question") or ""
    if not isinstance(question, str):
        raise JsonRpcInvalidParams(f"{command}: question must be a string.")
    uri = arg.get("uri")
    text, start_line, end_line, path, language = arg.get("text") or "", 0, 0, "", ""
    if not isinstance(text, str):
        raise JsonRpcInvalidParams(f"{command}: text must be a string.")
    if isinstance(uri, str) and uri:
        doc = ls.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"{command}: {uri} is not open.")
        path, language = ls.display_path(uri) or uri, doc.language_id
        if arg.get("range") is not None and not text:
            text, start_line, end_line = selected_text(ls.documents, command, uri, arg["range"])
    inputs = PromptInputs(
        selection=text, question=question, path=path, language=language, start_line=start_line, end_line=end_line,
        uri=uri if isinstance(uri, str) else "",
    )
    settings = ls.settings.prompts
    context = ls.memory.context_for if ls.memory is not None else None
    try:
        rendered = await render_prompt(
            ls.prompts, name, inputs, context,
            rag_budget_tokens=settings.rag_budget_tokens, recent_budget_tokens=settings.recent_budget_tokens,
        )
    except PromptError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    except MemoryUnavailable as exc:  # the template still renders, without memories
        log.warning("prompt %s without memories: %s", name, exc)
        rendered = await render_prompt(ls.prompts, name, inputs, None)
    return rendered.to_json()


def register(server: GemmaLanguageServer) -> None:
    @server.command(LIST)
    async def list_prompts(ls: GemmaLanguageServer, *args):
        try:
            return ls.prompts.status()
        except PromptError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @server.command(RENDER)
    async def render(ls: GemmaLanguageServer, *args):
        return await render_for(ls, RENDER, command_argument(args, RENDER))
