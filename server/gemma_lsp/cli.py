"""The ``gemma-lsp`` command: serve | demo | bench | make-test-model | memory | index | prompt | config | protocol | schema."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gemma_lsp import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gemma-lsp", description="A local AI language server for Gemma models.")
    p.add_argument("--version", action="version", version=f"gemma-lsp {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the language server (stdio by default)")
    s.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    s.add_argument("--model", help="a Gemma GGUF file or a named model such as gemma3-270m (overrides model.path)")
    s.add_argument("--config", type=Path, help="TOML settings file (default: $GEMMA_LSP_CONFIG or the user config dir)")
    s.add_argument("--log-file", type=Path, help="write the log here (default: stderr)")
    s.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")

    d = sub.add_parser("demo", help="start the server and drive it as an editor would")
    d.add_argument("--model", help="a Gemma GGUF file, a named model (gemma3-270m, the default) or 'random' "
                   "(a tiny model with random weights)")
    d.add_argument("--base-url", action="append", metavar="URL",
                   help="the model on an OpenAI-compatible server instead (its API root, e.g. http://gpu-box:8080/v1; "
                   "repeat for several)")

    m = sub.add_parser("make-test-model", help="write a random-weight Gemma-family GGUF for tests")
    m.add_argument("--arch", choices=["gemma", "gemma2", "gemma3", "gemma-embedding"], default="gemma3")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--preset", choices=["tiny", "270m-shape", "embedding"], default="tiny",
                   help="embedding: a small EmbeddingGemma-shaped encoder (use with --arch gemma-embedding)")
    m.add_argument("--vocab-size", type=int, help="pad the vocabulary to this many tokens (262144 = Gemma 3's)")
    m.add_argument("--seed", type=int, default=0)

    mem = sub.add_parser("memory", help="workspace memories: add | search | list | forget | export | import")
    mem.add_argument("--workspace", type=Path, default=Path.cwd(), help="the workspace whose memories (default: .)")
    mem.add_argument("--config", type=Path, help="TOML settings file ([memory] section)")
    msub = mem.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = msub.add_parser("add", help="remember a text")
    add.add_argument("text")
    add.add_argument("--tier", default="long_term", choices=["working", "short_term", "long_term", "episodic", "semantic"])
    add.add_argument("--kind", default="note", choices=["code_chunk", "note", "chat_turn", "accepted_completion", "doc"])
    add.add_argument("--tags", default="", help="comma-separated")
    add.add_argument("--importance", type=float, default=0.5)
    srch = msub.add_parser("search", help="the best memories for a query")
    srch.add_argument("query")
    srch.add_argument("-k", type=int, default=5)
    srch.add_argument("--json", action="store_true")
    lst = msub.add_parser("list", help="every live memory, newest first")
    lst.add_argument("--tier")
    lst.add_argument("--json", action="store_true")
    fgt = msub.add_parser("forget", help="delete memories by id")
    fgt.add_argument("ids", nargs="+")
    exp = msub.add_parser("export", help="write the workspace's memories as JSON Lines")
    exp.add_argument("file", type=Path)
    imp = msub.add_parser("import", help="read memories from JSON Lines into this workspace")
    imp.add_argument("file", type=Path)

    idx = sub.add_parser("index", help="index a workspace folder into semantic memories")
    idx.add_argument("path", type=Path)
    idx.add_argument("--config", type=Path, help="TOML settings file ([memory] and [index] sections)")

    pr = sub.add_parser("prompt", help="prompt templates: list | render")
    pr.add_argument("--config", type=Path, help="TOML settings file ([prompts] and [memory] sections)")
    psub = pr.add_subparsers(dest="action", required=True)
    psub.add_parser("list", help="every template, its file and whether it loads")
    rnd = psub.add_parser("render", help="print a template filled in, with the workspace's memories")
    rnd.add_argument("name", help="template name, e.g. explain")
    rnd.add_argument("--file", type=Path, help="the file the selection comes from")
    rnd.add_argument("--lines", metavar="A-B", help="the selection: lines A to B of --file (1-based; default: all)")
    rnd.add_argument("--question", default="", help="what the user asks (ask, chat, fix)")
    rnd.add_argument("--workspace", type=Path, default=Path.cwd(), help="whose memories (default: .)")
    rnd.add_argument("--no-memories", action="store_true", help="leave rag_context and rag_recent empty")
    rnd.add_argument("--json", action="store_true", help="print the rendered prompt and its memory blocks as JSON")

    cfg = sub.add_parser("config", help="the settings file: show | validate | set KEY VALUE")
    cfile = argparse.ArgumentParser(add_help=False)
    cfile.add_argument("--config", type=Path, help="TOML settings file (default: $GEMMA_LSP_CONFIG or the user config dir)")
    csub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    csub.add_parser("show", parents=[cfile], help="print the effective settings as TOML, saying which file they come from")
    cval = csub.add_parser("validate", parents=[cfile], help="check the file: exit 1 with one line per problem")
    cval.add_argument("file", nargs="?", type=Path, help="the file to check (default: --config, else the user's)")
    cset = csub.add_parser("set", parents=[cfile], help="set a dotted KEY to VALUE (a TOML value or text), checked first")
    cset.add_argument("key", help="e.g. completion.max_tokens")
    cset.add_argument("value", help="e.g. 32, true, 0.2, '[\"a\"]' or text")

    sub.add_parser("protocol", help="print every custom method, command and notification as JSON")
    sub.add_parser("schema", help="print the JSON schema of every setting (what editors build their settings from)")
    doc = sub.add_parser("doctor", help="check the model, llama.cpp, threads, memory store, templates: a line each")
    doc.add_argument("--config", type=Path, default=None, help="settings file (default: the user's config.toml)")
    doc.add_argument("--model", default=None, help="a Gemma GGUF or a named model, in place of model.path")
    doc.add_argument("--workspace", type=Path, default=None, help="the workspace folder to check")

    b = sub.add_parser(
        "bench", help="benchmarks",
        description="Run a suite (its results are stored: --store PATH, --no-store, --tag TEXT), or read the "
        "stored runs back: report, compare, models.",
    )  # fmt: skip
    b.add_argument("suite", choices=["completion", "sampling", "rag", "quality", "chat", "soak", "report", "compare", "models"])
    b.add_argument("rest", nargs=argparse.REMAINDER, help="options of the suite (see gemma-lsp bench SUITE --help)")
    return p


def _configure_logging(verbosity: int, log_file: Path | None) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pygls logs every message at INFO: only worth its cost when debugging (-vv).
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    from gemma_lsp.config import default_config_path
    from gemma_lsp.lsp import create_server

    if args.config is not None and not args.config.exists():  # named on purpose: not a default to skip
        print(f"gemma-lsp: --config {args.config} does not exist", file=sys.stderr)
        return 2
    _configure_logging(args.verbose, args.log_file)
    overrides = {"model": {"backend": "llama.cpp", "path": str(args.model)}} if args.model else {}
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    server = create_server(config_path=args.config or default_config_path(), overrides=overrides, cli_log_level=level)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"gemma-lsp: --tcp expects HOST:PORT, got {args.tcp!r}", file=sys.stderr)
            return 2
        from gemma_lsp.lsp.transport import exit_now, serve_tcp

        exit_now(serve_tcp(server, host, int(port)))
    from gemma_lsp.lsp.transport import exit_now, serve_stdio

    exit_now(serve_stdio(server))


def _doctor(args: argparse.Namespace) -> int:
    from gemma_lsp import doctor
    from gemma_lsp.config import default_config_path, load_settings
    from gemma_lsp.errors import ConfigError

    config = args.config or default_config_path()
    if args.config is not None and not args.config.is_file():
        print(f"gemma-lsp: --config {args.config} does not exist", file=sys.stderr)
        return 2
    overrides = {"model": {"backend": "llama.cpp", "path": str(args.model)}} if args.model else {}
    try:
        settings = load_settings(config, overrides)
    except ConfigError as exc:
        print(f"fail  config    {exc}")
        return 1
    print(f"ok    config    {config if config.is_file() else 'defaults (no ' + str(config) + ')'}")
    checks = doctor.run(settings, args.workspace)
    for check in checks:
        print(check.line())
    return 1 if any(c.status == doctor.FAIL for c in checks) else 0


def _config(args: argparse.Namespace) -> int:
    from gemma_lsp.config import default_config_path
    from gemma_lsp.config.edit import problems, set_value, show, toml_value
    from gemma_lsp.errors import ConfigError

    path = (getattr(args, "file", None) or args.config or default_config_path()).expanduser()

    def notify(message: str) -> None:
        print(f"gemma-lsp: {message}", file=sys.stderr)

    try:
        if args.action == "show":
            print(show(path, notify=notify), end="")
        elif args.action == "validate":
            found = problems(path, notify)
            print("\n".join(found) if found else f"{path} is valid")
            return 1 if found else 0
        else:
            value = set_value(path, args.key, args.value, notify)
            print(f"{args.key} = {toml_value(value)} in {path}")
    except ConfigError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 1
    return 0


def _make_test_model(args: argparse.Namespace) -> int:
    from gemma_lsp.engine.testmodel import write_test_model

    try:
        path = write_test_model(args.out, arch=args.arch, preset=args.preset, vocab_size=args.vocab_size, seed=args.seed)
    except ValueError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    size = path.stat().st_size
    print(f"wrote {path} ({args.arch}, {args.preset}, {size / 1e6:.1f} MB, random weights)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    rest = [a for a in args.rest if a != "--"]
    if args.suite == "compare":  # the stored runs
        from gemma_lsp.bench.compare import main as compare_runs

        return compare_runs(rest)
    if args.suite == "report":
        from gemma_lsp.bench.report import main as write_report

        return write_report(rest)
    if args.suite == "models":
        from gemma_lsp.bench.models import main as compare_models

        return compare_models(rest)
    from gemma_lsp.bench.store import StoreError, record, store_options

    try:
        store, tag, rest = store_options(rest)
    except ValueError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    if args.suite == "completion":
        from gemma_lsp.bench.completion import run
    elif args.suite == "rag":
        from gemma_lsp.bench.rag import run
    elif args.suite == "chat":
        from gemma_lsp.bench.chat import run
    elif args.suite == "quality":
        from gemma_lsp.bench.quality import run
    elif args.suite == "soak":
        from gemma_lsp.bench.soak import run
    else:
        from gemma_lsp.bench.sampling import run
    from gemma_lsp.bench.machine import reset_peak_rss

    reset_peak_rss()
    result = run(rest)
    print(result.output(), flush=True)  # every suite's results are printed here, then stored
    if store is None:
        return 0
    try:
        run_id, path = record(
            result.suite, result.report, model=result.model, settings=result.settings, n_ctx=result.n_ctx, tag=tag,
            path=store,
        )  # fmt: skip
    except StoreError as exc:
        print(f"gemma-lsp: the results were not stored: {exc}", file=sys.stderr)
        return 1
    print(f"stored as run {run_id} in {path}", file=sys.stderr)
    return 0


def _services(config: Path | None, workspace: Path | None, *, memory: bool = True):
    """The workspace's services from the settings file (``Services``: the one place they are built)."""
    from gemma_lsp.app import Services
    from gemma_lsp.config import default_config_path, load_settings

    settings = load_settings(config or default_config_path())

    def notify(level: str, message: str) -> None:
        if "degraded" in message or "unavailable" in message.lower():
            message += " (writes are journaled and replayed later)"
        print(f"gemma-lsp: {message}", file=sys.stderr)

    return Services.from_settings(settings, workspace, memory=memory, notify=notify)


def _memory(args: argparse.Namespace) -> int:
    import asyncio
    import json

    if not args.workspace.is_dir():
        print(f"gemma-lsp: --workspace {args.workspace} is not a folder", file=sys.stderr)
        return 2

    async def run() -> int:
        services = _services(args.config, args.workspace)
        service = services.memory
        try:
            await services.start_memory()
            if args.action == "add":
                tags = [t.strip() for t in args.tags.split(",") if t.strip()]
                memory = await service.remember(args.text, tier=args.tier, kind=args.kind, tags=tags, importance=args.importance)
                print(memory.id)
            elif args.action == "search":
                for hit in await service.search(args.query, k=args.k):
                    if args.json:
                        print(json.dumps({"id": hit.id, "score": hit.score, "text": hit.memory.text}))
                    else:
                        first = hit.memory.text.strip().splitlines()[0][:100]
                        print(f"{hit.id}  {hit.score:.3f}  {hit.memory.tier.value:<10}  {first}")
            elif args.action == "list":
                for m in await service.list(tiers=[args.tier] if args.tier else None):
                    if args.json:
                        print(m.model_dump_json())
                    else:
                        first = m.text.strip().splitlines()[0][:100]
                        print(f"{m.id}  {m.tier.value:<10}  {m.kind.value:<19}  {first}")
            elif args.action == "forget":
                print(f"forgot {await service.forget(args.ids)} of {len(args.ids)}")
            elif args.action == "export":
                print(f"exported {await service.export_jsonl(args.file)} memories to {args.file}")
            elif args.action == "import":
                if not args.file.is_file():
                    print(f"gemma-lsp: {args.file} does not exist", file=sys.stderr)
                    return 2
                print(f"imported {await service.import_jsonl(args.file)} memories from {args.file}")
            return 0
        except ValueError as exc:
            print(f"gemma-lsp: {exc}", file=sys.stderr)
            return 2
        finally:
            await services.close()

    return asyncio.run(run())


def _index(args: argparse.Namespace) -> int:
    import asyncio

    if not args.path.is_dir():
        print(f"gemma-lsp: {args.path} is not a folder", file=sys.stderr)
        return 2

    def bar(state) -> None:
        width = 30
        done = int(width * state.files_done / max(1, state.files_total))
        print(
            f"\r[{'#' * done}{' ' * (width - done)}] {state.files_done}/{state.files_total} files, "
            f"{state.chunks_written} chunks written",
            end="", file=sys.stderr, flush=True,
        )

    async def run() -> int:
        services = _services(args.config, args.path)
        service = services.memory
        try:
            await services.start_memory()
            state = await service.index_workspace(bar)
            print(file=sys.stderr)
            print(f"indexed {state.files_total} files into {service.namespace}: {state.chunks_written} chunks written"
                  f"{f'; {state.secrets_skipped} secret files left out' if state.secrets_skipped else ''}")
            return 0
        finally:
            await services.close()

    return asyncio.run(run())


def _selection(file: Path, lines: str | None) -> tuple[str, int, int]:
    """The text of ``file`` (lines ``A-B`` of it, 1-based) and its first and last line numbers."""
    text = file.read_text(encoding="utf-8", errors="replace")
    all_lines = text.splitlines(keepends=True)
    if not lines:
        return text, (1 if text else 0), len(all_lines)
    first, _, last = lines.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"--lines {lines!r} is not A-B (two line numbers, e.g. 10-24)") from None
    if not 1 <= a <= b <= len(all_lines):
        raise ValueError(f"--lines {lines} is outside {file}, which has {len(all_lines)} lines")
    return "".join(all_lines[a - 1 : b]), a, b


def _prompt(args: argparse.Namespace) -> int:
    import asyncio

    from gemma_lsp.errors import ConfigError

    try:
        rendering = args.action == "render"
        services = _services(args.config, args.workspace if rendering else None, memory=rendering and not args.no_memories)
    except ConfigError as exc:  # one sentence naming the key
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        try:
            return await _prompt_action(args, services)
        finally:
            await services.close()

    return asyncio.run(run())


async def _prompt_action(args: argparse.Namespace, services) -> int:
    import json

    from gemma_lsp.prompts import PromptError, PromptInputs, language_for
    from gemma_lsp.uri import path_to_uri

    if args.action == "list":
        try:
            for entry in services.prompts.status():
                state = f"error: {entry['error']}" if entry["error"] else entry["description"]
                print(f"{entry['name']:<12} {state}\n{'':<12} {entry['path']}")
        except PromptError as exc:
            print(f"gemma-lsp: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        text, first, last = _selection(args.file, args.lines) if args.file else ("", 0, 0)
    except (OSError, ValueError) as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    path = ""
    if args.file:
        try:
            path = args.file.resolve().relative_to(args.workspace.resolve()).as_posix()
        except ValueError:
            path = args.file.name
    inputs = PromptInputs(
        selection=text, question=args.question, path=path, language=language_for(path), start_line=first,
        end_line=last, uri=path_to_uri(args.file.resolve()) if args.file else "",
    )
    try:
        await services.start_memory()
        rendered = await services.render(args.name, inputs)
    except PromptError as exc:
        print(f"gemma-lsp: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rendered.to_json()) if args.json else rendered.text, end="" if not args.json else "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "prompt":
        return _prompt(args)
    if args.command == "memory":
        return _memory(args)
    if args.command == "index":
        return _index(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "make-test-model":
        return _make_test_model(args)
    if args.command == "demo":
        from gemma_lsp.demo import run_demo

        return run_demo(args.model, args.base_url)
    if args.command == "bench":
        return _bench(args)
    if args.command == "protocol":
        import json

        from gemma_lsp.protocol import describe

        print(json.dumps(describe(), indent=2))
        return 0
    if args.command == "doctor":
        return _doctor(args)
    if args.command == "config":
        return _config(args)
    if args.command == "schema":
        import json

        from gemma_lsp.schema import settings_schema

        print(json.dumps(settings_schema(), indent=2))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
