"""Hostile templates: every bomb is refused quickly with one sentence naming the file and the limit,
the server's own memory does not grow, and links out of a template folder are refused."""

from __future__ import annotations

import os
import time

import pytest

from gemma_lsp.prompts import PromptError, PromptLibrary, builtin_prompt_dir

SELECTION = {"selection": "xyzxyzxyzx"}

# name -> (template, what the refusal says). Each of these, unbounded, ran a core flat out or grew the
# process by gigabytes.
BOMBS = {
    "str-repeat": ("{{ selection * 100000000 }}", "repeating a str 100,000,000 times"),
    "str-repeat-left": ("{{ 100000000 * selection }}", "repeating a str 100,000,000 times"),
    "list-repeat": ("{{ [1] * 100000000 }}", "repeating a list 100,000,000 times"),
    "tuple-repeat": ("{{ (1, 2) * 100000000 }}", "repeating a tuple"),
    "dict-of-repeat": ("{{ dict(a=selection * 100000000) }}", "repeating a str"),
    "power": ("{{ (selection|length + 9) ** (9 ** 9) }}", "raising a number to the power 387,420,489"),
    "squaring": (
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
        "multiplying would make a number",
    ),
    "nested-ranges": (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "loops over range() took more than 200,000 steps",
    ),
    "silent-nested-ranges": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "loops over range() took more than 200,000 steps",
    ),
    "huge-range": ("{{ range(10**9)|list }}", "range() of 1,000,000,000 numbers"),
    "percent-filter": ("{{ '%999999999s'|format(selection) }}", "'%' formatting would make"),
    "percent-operator": ("{{ '%999999999s' % selection }}", "'%' formatting would make"),
    "percent-bytes": ("{{ '%999999999s'.encode() % selection.encode() }}", "'%' formatting would make"),
    "percent-star": ("{{ '%*s' % (999999999, selection) }}", "'*' width or precision"),
    "center": ("{{ 'x'|center(10**9) }}", "the center filter would make"),
    "indent": ("{{ 'a\nb'|indent(1000000000) }}", "the indent filter would make"),
    "wordwrap": ("{{ (selection * 1000)|wordwrap(1, wrapstring=selection * 10000) }}", "the wordwrap filter"),
    "replace-empty": ("{{ (selection * 1000)|replace('', selection * 1000) }}", "the replace filter would make"),
    "batch": ("{{ [1]|batch(1000000000, 'x')|list }}", "the batch filter would make"),
    "slice": ("{{ [1]|slice(1000000000, 'x')|list }}", "the slice filter would make"),
    "tojson-indent": ("{{ [[[1]]]|tojson(indent=1000000000) }}", "tojson's indent may be at most 16"),
    "lipsum": ("{{ lipsum(100000) }}", "lipsum() makes at most 100 paragraphs"),
    "ljust": ("{{ selection.ljust(1000000000) }}", "a string method would make"),
    "zfill": ("{{ selection.zfill(1000000000) }}", "a string method would make"),
    "expandtabs": ("{{ ('\t' * 1000).expandtabs(1000000) }}", "a string method would make"),
    "translate": ("{{ selection.translate({120: selection * 100000}) }}", "translate() is not available"),
    "str-format": ("{{ '{:>999999999}'.format(selection) }}", "str.format would make"),
    "str-format-nested": ("{{ '{:>{}}'.format(selection, 999999999) }}", "str.format would make"),
    "join-of-copies": ("{{ ([selection * 100000] * 100)|join }}", "repeating a list 100 times"),
    "join-of-generator": ("{{ range(100000)|map('string')|map('center', 100000)|join }}", "the items of the map filter"),
    "list-of-generator": ("{{ range(100000)|map('string')|map('center', 100000)|list|length }}", "the map filter"),
    "sum-of-lists": ("{{ ([[selection * 10000]] * 100000)|sum(start=[]) }}", "repeating a list 100,000 times"),
    "doubling-tilde": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "joining with '~' would make",
    ),
    "doubling-plus": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "joining two values would make",
    ),
    "self-nesting-list": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
        "writing a value out would make",
    ),
    "self-nesting-string-filter": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
        "{{ ns.l|string|length }}",
        "the string filter's input",
    ),
    "set-block": (
        "{% set big = selection * 10000 %}{% set x %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endset %}"
        "{{ x|length }}",
        "a block, macro or include would make",
    ),
    "list-append": ("{% set l = [1] %}{% for i in range(99) %}{{ l.extend(l) }}{% endfor %}", "'extend' of 'list' object is unsafe"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, (text, _) in BOMBS.items():
        (folder / f"{name}.jinja").write_text(text)
    (folder / "fine.jinja").write_text("Explain {{ selection }}\n")
    library = PromptLibrary([folder])
    yield folder, library
    library.close()


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_every_bomb_is_refused_quickly_naming_the_file_and_the_limit(hostile, name):
    folder, library = hostile
    started = time.monotonic()
    with pytest.raises(PromptError) as err:
        library.render(name, SELECTION)
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert message.startswith(f"{folder / name}.jinja, line "), message
    assert BOMBS[name][1] in message, message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    assert elapsed < 2.5, f"{name} took {elapsed:.1f} s"
    assert library.render("fine", SELECTION) == "Explain xyzxyzxyzx\n"  # the library still renders


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_what_no_check_sees_is_stopped_by_the_deadline_in_a_worker_process(tmp_path):
    (tmp_path / "macro.jinja").write_text(
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}x{% endmacro %}{{ f(40) }}"
    )
    (tmp_path / "loops.jinja").write_text(
        "{% for a in selection * 50 %}{% for b in selection * 50 %}{% for c in selection * 50 %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    (tmp_path / "fine.jinja").write_text("{{ selection }}")
    library = PromptLibrary([tmp_path], timeout_seconds=0.5)
    try:
        library.render("fine", SELECTION)
        before = _rss_mb()
        for name in ("macro", "loops"):
            started = time.monotonic()
            with pytest.raises(PromptError, match=rf"{name}.jinja: rendering took longer than 0.5 s, the most a template may take"):
                library.render(name, SELECTION)
            assert time.monotonic() - started < 1.5
        assert library.render("fine", SELECTION) == "xyzxyzxyzx"  # a fresh worker
        assert _rss_mb() - before < 20  # the bombs grew the workers, not this process
    finally:
        library.close()


def test_a_template_that_needs_more_memory_than_allowed_is_named(tmp_path):
    (tmp_path / "big.jinja").write_text("{{ (selection * 9000000)|length }}")
    library = PromptLibrary([tmp_path], memory_mb=64, max_chars=100_000_000)
    try:
        with pytest.raises(PromptError, match=r"big.jinja, line 1: rendering needed more than the 64 MB of memory"):
            library.render("big", {"selection": "0123456789"})
    finally:
        library.close()


def test_the_output_is_bounded_too(tmp_path):
    (tmp_path / "long.jinja").write_text("{% for i in range(5000) %}{{ selection }}{% endfor %}")
    library = PromptLibrary([tmp_path], max_chars=10_000)
    try:
        with pytest.raises(PromptError, match=r"long.jinja: the rendered prompt passed 10,000 characters, the most a prompt may have"):
            library.render("long", SELECTION)
    finally:
        library.close()


def test_ordinary_templates_still_render_everything_they_did(tmp_path):
    (tmp_path / "rich.jinja").write_text(
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}"
        "{{ ns.n }} {{ '%-5s|' % language }} {{ '{:>4}'.format(start_line) }} {{ selection|upper|center(14) }}"
        " {{ [1, 2]|join(',') }} {{ (selection * 2)|length }} {{ 2 ** 10 }} {{ lines ~ '!' }}"
        " {{ question.split()|map('title')|join(' ') }} {{ path.replace('/', '.') }}\n"
    )
    library = PromptLibrary([tmp_path, builtin_prompt_dir()])
    try:
        values = {**SELECTION, "language": "py", "start_line": 7, "lines": "line 7", "question": "why so", "path": "a/b"}
        assert library.render("rich", values) == (
            "3 py   |    7   XYZXYZXYZX   1,2 20 1024 line 7! Why So a.b\n"
        )
        assert "xyzxyzxyzx" in library.render("explain", SELECTION)
    finally:
        library.close()


# ------------------------------------------------------------------------------------------- links
def test_a_template_linked_to_a_file_outside_its_folder_is_refused(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the secret\n")
    (folder / "passwd.jinja").symlink_to(secret)
    (folder / "mine.jinja").write_text("mine {{ selection }}\n")
    (folder / "alias.jinja").symlink_to(folder / "mine.jinja")  # a link inside the folder is fine
    library = PromptLibrary([folder])
    try:
        with pytest.raises(PromptError) as err:
            library.render("passwd", SELECTION)
        assert str(err.value) == (
            f"{folder / 'passwd.jinja'} is a link to {secret}, outside its template folder {folder}; "
            "a template must be a file inside it."
        )
        assert "the secret" not in str(err.value)
        status = {s["name"]: s for s in library.status()}
        assert status["passwd"]["error"] == str(err.value) and status["passwd"]["description"] == ""
        assert library.render("alias", SELECTION) == "mine xyzxyzxyzx\n"
    finally:
        library.close()


@pytest.mark.parametrize(
    "tag",
    ['{% include "outside.jinja" %}', '{% import "outside.jinja" as o %}{{ o }}', '{% extends "outside.jinja" %}'],
)
def test_include_import_and_extends_are_confined_to_the_template_folders(tmp_path, tag):
    folder = tmp_path / "prompts"
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("the secret\n")
    (folder / "outside.jinja").symlink_to(outside)
    (folder / "uses.jinja").write_text(tag + "\n")
    (folder / "_part.jinja").write_text("+++\ndescription = 'a part'\n+++\npart of {{ selection }}\n")
    (folder / "good.jinja").write_text('{% include "_part.jinja" %}and more\n')
    (folder / "climbs.jinja").write_text('{% include "../outside.txt" %}\n')
    library = PromptLibrary([folder])
    try:
        with pytest.raises(PromptError) as err:
            library.render("uses", SELECTION)
        assert f"is a link to {outside}, outside its template folder {folder}" in str(err.value)
        assert "the secret" not in str(err.value) and str(err.value).startswith(str(folder / "uses.jinja"))
        assert library.render("good", SELECTION) == "part of xyzxyzxyzx\nand more\n"
        with pytest.raises(PromptError, match="climbs.jinja, line 1: .*outside.txt"):
            library.render("climbs", SELECTION)
    finally:
        library.close()


async def test_the_render_limits_are_settings_and_a_change_replaces_the_library(tmp_path):
    from gemma_lsp.app import Services
    from gemma_lsp.config import Settings

    (tmp_path / "long.jinja").write_text("{% for i in range(200) %}{{ selection }}{% endfor %}")
    settings = Settings.model_validate({"prompts": {"dirs": [str(tmp_path)], "max_prompt_chars": 1000}})
    services = Services.from_settings(settings, memory=False)
    try:
        old = services.prompts
        with pytest.raises(PromptError, match="passed 1,000 characters"):
            old.render("long", SELECTION)
        roomy = Settings.model_validate({"prompts": {"dirs": [str(tmp_path)], "max_prompt_chars": 100_000}})
        applied = await services.apply(roomy)
        assert applied.prompts and services.prompts is not old and old._pool._closed
        assert services.prompts.render("long", SELECTION) == "xyzxyzxyzx" * 200
        budgets = roomy.model_copy(update={"prompts": roomy.prompts.model_copy(update={"rag_budget_tokens": 7})})
        assert not (await services.apply(budgets)).prompts  # budgets are read at each render
    finally:
        await services.close()
    with pytest.raises(Exception, match="max_prompt_chars"):
        Settings.model_validate({"prompts": {"max_prompt_chars": 10}})
