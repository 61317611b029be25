"""Jinja's sandbox with bounds: no template can make a huge string, number, list or loop.

Jinja's own sandbox keeps templates away from Python objects, but not from the machine:
``{{ selection * 100000000 }}``, ``{{ 9 ** 9 ** 9 }}``, ``'%999999999s'|format(x)`` or nested
``range(100000)`` loops each ran one core flat out or grew the process by gigabytes.
:class:`BoundedEnvironment` checks, before it is made, the size of every value an operator,
filter, method or string conversion would produce:

- ``*`` ``+`` ``%`` ``**`` and ``~``: the result's length (or an integer's bits) is estimated from
  the operands and refused beyond the limit;
- filters (``center``, ``indent``, ``format``, ``join``, ``batch``, ``slice``, ``replace``,
  ``wordwrap``, ``sum``, ``tojson``, ...) and string methods (``ljust``, ``zfill``, ``format``,
  ...): the same, from their arguments; string methods not known to be bounded are refused;
- ``range`` yields at most 100,000 items, and all the loops over ranges of one render at most
  :data:`MAX_RANGE_STEPS` steps together; ``lipsum`` at most 100 paragraphs;
- every value written out (``{{ x }}``), joined (``~``) or captured (``{% set %}`` blocks,
  macros) is measured first, so a list holding itself many times over cannot be printed.

Rendering also stops when the text written out passes the limit (:func:`render_bounded`).
What no check can see (a template busy in a long pure loop, a macro recursing into itself
exponentially) is bounded by time and memory where templates are rendered: a separate process
with a deadline and a memory limit (``worker.py``).

Each refusal is a :class:`TemplateLimit` naming what was too big and the limit.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import jinja2.compiler
import jinja2.nodes
import jinja2.sandbox
from jinja2.utils import Namespace, generate_lorem_ipsum

DEFAULT_MAX_CHARS = 1_000_000  # characters of any string a template makes, and of its output
MAX_INT_BITS = 65_536  # bits of any integer a template makes (about 19,700 digits)
MAX_RANGE = 100_000  # items of one range()
MAX_RANGE_STEPS = 200_000  # steps of all the loops over range() of one render, together
MAX_LIPSUM = 100  # paragraphs (and words per paragraph: 10x) of lipsum()
MAX_DEPTH = 100  # nesting of lists and dicts a template writes out
MAX_JSON_INDENT = 16


class TemplateLimit(jinja2.sandbox.SecurityError):
    """A template tried to make something bigger than the limits allow; the message says what."""


# ---------------------------------------------------------------------------- measuring
def measure(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` has, without making it; stops counting past ``limit``.

    Lists, tuples, dicts and namespaces are walked once each (a list that holds another list
    a million times costs one walk of the inner list), so the estimate is cheap even for
    values whose text would be enormous.
    """
    memo: dict[int, int] = {}

    def walk(v: Any, depth: int) -> int:
        if isinstance(v, str | bytes):
            return len(v)
        if isinstance(v, bool) or v is None:
            return 5
        if isinstance(v, int):
            return v.bit_length() * 30103 // 100000 + 2
        if isinstance(v, float):
            return 24
        if isinstance(v, Namespace):
            v = object.__getattribute__(v, "_Namespace__attrs")
        if not isinstance(v, list | tuple | dict | set | frozenset):
            return 64  # an object's repr: a macro, a loop, a cycler, a range, a generator ...
        key = id(v)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise TemplateLimit(f"a value is nested more than {MAX_DEPTH} levels deep")
        total = 2
        items: Iterable[Any] = (x for pair in v.items() for x in pair) if isinstance(v, dict) else v
        for item in items:
            total += walk(item, depth + 1) + 2
            if total > limit:
                break
        memo[key] = total
        return total

    return walk(value, 0)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}"


# ---------------------------------------------------------------------------- environment
class _CodeGenerator(jinja2.compiler.CodeGenerator):
    """Jinja's code generator, with ``a ~ b`` routed through the environment so it is measured."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Any) -> None:  # noqa: N802 - jinja's name
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Budget(threading.local):
    range_steps = 0
    deadline = math.inf


_budget = _Budget()


class ConfinedLoader(jinja2.BaseLoader):
    """``{% include %}``, ``{% import %}`` and ``{% extends %}`` of files in the template folders only.

    A name is looked up in the folders in order (the first having it wins, as for templates);
    a file whose real path (links followed) is outside the folder it was found in is refused.
    """

    def __init__(self, dirs: Iterable[Path | str]) -> None:
        self.dirs = [Path(d) for d in dirs]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = jinja2.loaders.split_template_path(template)  # refuses '..'
        for folder in self.dirs:
            path = folder.joinpath(*pieces)
            if not path.is_file():
                continue
            confined(path, folder)
            stamp = path.stat().st_mtime_ns
            source = strip_front_matter(path.read_text(encoding="utf-8"))
            return source, str(path), lambda p=path, s=stamp: _same_mtime(p, s)
        raise jinja2.TemplateNotFound(template, f"there is no template {template!r} in {', '.join(map(str, self.dirs))}")


def _same_mtime(path: Path, stamp: int) -> bool:
    try:
        return path.stat().st_mtime_ns == stamp
    except OSError:
        return False


def confined(path: Path, folder: Path) -> Path:
    """``path``'s real path, which must be inside ``folder``'s; raises TemplateLimit otherwise."""
    real = Path(os.path.realpath(path))
    home = Path(os.path.realpath(folder))
    if real != home and home not in real.parents:
        raise TemplateLimit(
            f"{path} is a link to {real}, outside its template folder {folder}; a template must be a file inside it"
        )
    return real


def strip_front_matter(text: str) -> str:
    """The body of an included template file: without its ``+++`` front matter."""
    if not text.startswith("+++"):
        return text
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() == "+++":
            return "\n".join(lines[i + 1 :])
    return text


class BoundedEnvironment(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox (no ``list.append`` and the like) with every size bounded.

    ``max_chars`` bounds every string (and list, measured as text) a template makes and the
    text it renders. Compile-time constant folding is off, so nothing of a template runs
    before it is rendered.
    """

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, dirs: Iterable[Path | str] = (), max_chars: int = DEFAULT_MAX_CHARS, **options: Any) -> None:
        super().__init__(loader=ConfinedLoader(dirs), optimized=False, finalize=self._finalize_value, **options)
        self.max_chars = max_chars
        self.concat = self._bounded_join  # {% set %} blocks, macros, caller(): their text is joined here
        self.globals.update(
            range=self._range, lipsum=self._lipsum, dict=dict, cycler=self.globals["cycler"],
            joiner=self.globals["joiner"], namespace=Namespace,
        )  # fmt: skip
        self.filters["format"] = functools.partial(_format_filter, self)
        self.filters["join"] = jinja2.pass_environment(_join_filter)
        for name, fn in list(self.filters.items()):
            self.filters[name] = self._bounded_filter(name, fn)

    # ---------------------------------------------------------------- limits
    def _refuse(self, what: str) -> TemplateLimit:
        return TemplateLimit(
            f"{what}, more than the {_plural(self.max_chars, 'characters')} a template may make (prompts.max_prompt_chars)"
        )

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_chars:
            raise self._refuse(f"{what} would make about {_plural(size, 'characters')}")

    def check_value(self, value: Any, what: str) -> Any:
        self.check_size(measure(value, self.max_chars), what)
        return value

    # ---------------------------------------------------------------- operators
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sequence = (str, bytes, list, tuple)
        if operator == "*":
            if isinstance(left, int) and isinstance(right, sequence):
                left, right = right, left
            if isinstance(left, sequence) and isinstance(right, int):
                self.check_size(measure(left, self.max_chars) * max(right, 0), f"repeating a {type(left).__name__} {right:,} times")
            elif isinstance(left, int) and isinstance(right, int):
                self._check_bits(left.bit_length() + right.bit_length(), "multiplying")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                bits = (abs(left).bit_length() - 1) * right if right < MAX_INT_BITS else MAX_INT_BITS + 1
                self._check_bits(max(bits, right), f"raising a number to the power {right:,}")
        elif operator == "+":
            if isinstance(left, sequence) and isinstance(right, sequence):
                self.check_size(measure(left, self.max_chars) + measure(right, self.max_chars), "joining two values")
        elif operator == "%":
            if isinstance(left, str | bytes):
                return self.percent_format(left, right)
        return super().call_binop(context, operator, left, right)

    def _check_bits(self, bits: int, what: str) -> None:
        if bits > MAX_INT_BITS:
            raise TemplateLimit(
                f"{what} would make a number of about {_plural(bits, 'bits')}, more than the "
                f"{_plural(MAX_INT_BITS, 'bits')} a template may make"
            )

    def percent_format(self, template: str | bytes, args: Any) -> str | bytes:
        """``template % args`` after checking every width and precision and the arguments' sizes."""
        size = len(template) + measure(args, self.max_chars)
        text = template.decode("latin-1") if isinstance(template, bytes) else template
        for m in _PERCENT.finditer(text):
            for number in (m.group("width"), m.group("precision")):
                if number == "*":
                    raise TemplateLimit("a '*' width or precision in '%' formatting is not allowed in templates")
                if number:
                    size += int(number)
        self.check_size(size, "'%' formatting")
        return template % args

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``: measured, then joined as text."""
        self.check_size(sum(measure(p, self.max_chars) for p in parts), "joining with '~'")
        return "".join(map(str, parts))

    def _bounded_join(self, pieces: Iterable[Any]) -> str:
        out: list[str] = []
        size = 0
        for piece in pieces:
            size += len(piece)
            if size > self.max_chars:
                raise self._refuse(f"a block, macro or include would make more than {_plural(size, 'characters')}")
            out.append(piece)
        return "".join(out)

    def _finalize_value(self, value: Any) -> Any:
        """Every ``{{ value }}`` written out: measured before it becomes text."""
        return self.check_value(value, "writing a value out")

    # ---------------------------------------------------------------- globals
    def _range(self, *args: int) -> Iterator[int]:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise TemplateLimit(f"range() of {len(numbers):,} numbers, more than the {MAX_RANGE:,} a template may use")
        return _CountedRange(numbers)

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - jinja's names
        if not all(isinstance(x, int) for x in (n, min, max)) or n > MAX_LIPSUM or max > 10 * MAX_LIPSUM:
            raise TemplateLimit(f"lipsum() makes at most {MAX_LIPSUM} paragraphs of {10 * MAX_LIPSUM} words")
        return generate_lorem_ipsum(n, html, min, max)

    # ---------------------------------------------------------------- calls
    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - as jinja's
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and not isinstance(owner, type):
            name = getattr(__obj, "__name__", "")
            check = _STRING_METHODS.get(name)
            if check is None:
                raise TemplateLimit(f"the string method {name}() is not available in templates")
            check(__self, owner, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _counted(self, items: Iterator[Any], what: str) -> Iterator[Any]:
        """A filter's lazy result (``map``, ``select``, ...): its items together are bounded, since a
        later ``list`` or ``join`` may keep them all."""
        total = 0
        for item in items:
            total += measure(item, self.max_chars) + 2
            if total > self.max_chars:
                raise self._refuse(f"the items of {what} would make more than {_plural(total, 'characters')}")
            yield item

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map`` through the bounded formatter (jinja's own makes a plain one)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
            "format", "format_map"
        ):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        text, formatter, is_map = str(text), _BoundedFormatter(self), value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return formatter.vformat(text, args, kwargs)

        return functools.update_wrapper(wrapper, value)

    def _bounded_filter(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        passes = getattr(fn, "jinja_pass_arg", None) is not None
        estimate = _FILTER_SIZES.get(name)

        @functools.wraps(fn)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            real = args[1:] if passes else args
            for value in (*real, *kwargs.values()):
                self.check_value(value, f"the {name} filter's input")
            if estimate is not None and real:
                self.check_size(estimate(real[0], real[1:], kwargs, self.max_chars), f"the {name} filter")
            result = fn(*args, **kwargs)
            if isinstance(result, str | list | tuple | dict):
                self.check_value(result, f"the {name} filter")
            elif isinstance(result, Iterator):
                return self._counted(result, f"the {name} filter")
            return result

        return bounded


class _BoundedFormatter(jinja2.sandbox.SandboxedFormatter):
    """``'{:>9}'.format(x)``: widths, precisions and values measured before formatting."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        env: BoundedEnvironment = self._env  # type: ignore[assignment]
        size = measure(value, env.max_chars)
        m = _FORMAT_SPEC.match(format_spec)
        if m:
            size += int(m.group("width") or 0) + int(m.group("precision") or 0)
        env.check_size(size, "str.format")
        return super().format_field(value, format_spec)


class _CountedRange:
    """A range whose steps count against the render's :data:`MAX_RANGE_STEPS`."""

    __slots__ = ("_numbers",)

    def __init__(self, numbers: range) -> None:
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    def __iter__(self) -> Iterator[int]:
        budget = _budget
        for i, n in enumerate(self._numbers):
            if i & 1023 == 0:
                budget.range_steps += 1024
                if budget.range_steps > MAX_RANGE_STEPS:
                    raise TemplateLimit(
                        f"loops over range() took more than {MAX_RANGE_STEPS:,} steps, the most one render may take"
                    )
                if time.monotonic() > budget.deadline:
                    raise TemplateLimit("rendering took longer than its deadline")
            yield n

    def __repr__(self) -> str:
        return repr(self._numbers)


def render_bounded(compiled: jinja2.Template, values: dict[str, Any], *, max_chars: int, seconds: float = math.inf) -> str:
    """Render ``compiled``; stops when its text passes ``max_chars`` or ``seconds`` pass (checked
    between pieces of output and loop steps). Raises TemplateLimit or the template's own error."""
    _budget.range_steps = 0
    _budget.deadline = time.monotonic() + seconds
    try:
        out: list[str] = []
        size = 0
        for piece in compiled.generate(values):
            size += len(piece)
            if size > max_chars:
                raise TemplateLimit(
                    f"the rendered prompt passed {_plural(max_chars, 'characters')}, the most a prompt may have "
                    "(prompts.max_prompt_chars)"
                )
            if time.monotonic() > _budget.deadline:
                raise TemplateLimit("rendering took longer than its deadline")
            out.append(piece)
        return "".join(out)
    finally:
        _budget.deadline = math.inf


# ---------------------------------------------------------------------------- size estimates
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?")


def _int_arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _width(value: Any) -> int:
    if isinstance(value, int):
        return max(value, 0)
    return measure(value, 1 << 62)


def _len(value: Any, limit: int) -> int:
    return measure(value, limit)


def _lines(value: Any) -> int:
    return str(value).count("\n") + 1 if isinstance(value, str) else 1


def _replace_size(s: Any, old: Any, new: Any, count: Any, limit: int) -> int:
    if not isinstance(s, str) or not isinstance(old, str) or not isinstance(new, str):
        return _len(s, limit)
    n = len(s) + 1 if old == "" else s.count(old)
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(s) + n * max(len(new) - len(old), 0)


def _join_size(value: Any, args: tuple, kwargs: dict, limit: int) -> int:
    sep = _int_arg(args, kwargs, 0, "d", "")
    items = list(value) if isinstance(value, list | tuple | str) else None
    if items is None:
        return 0  # a generator: the result is measured after
    total = 0
    for item in items:
        total += measure(item, limit) + measure(sep, limit)
        if total > limit:
            break
    return total


def _sum_size(value: Any, args: tuple, kwargs: dict, limit: int) -> int:
    start = _int_arg(args, kwargs, 1, "start", 0)
    if not isinstance(start, str | list | tuple) or not isinstance(value, list | tuple):
        return 0
    return measure(start, limit) + measure(value, limit)


_FILTER_SIZES: dict[str, Callable[[Any, tuple, dict, int], int]] = {
    "center": lambda v, a, k, lim: max(_len(v, lim), _width(_int_arg(a, k, 0, "width", 80))),
    "indent": lambda v, a, k, lim: _len(v, lim) + (_lines(v) + 1) * _width(_int_arg(a, k, 0, "width", 4)),
    "wordwrap": lambda v, a, k, lim: _len(v, lim) * (1 + _width(_int_arg(a, k, 2, "wrapstring", "\n"))),
    "replace": lambda v, a, k, lim: _replace_size(
        v, _int_arg(a, k, 0, "old", ""), _int_arg(a, k, 1, "new", ""), _int_arg(a, k, 2, "count", None), lim
    ),
    "truncate": lambda v, a, k, lim: _len(v, lim) + _width(_int_arg(a, k, 2, "end", "...")),
    "batch": lambda v, a, k, lim: max(_width(_int_arg(a, k, 0, "linecount", 0)), _len(v, lim)),
    "slice": lambda v, a, k, lim: max(_width(_int_arg(a, k, 0, "slices", 0)), _len(v, lim)),
    "sum": _sum_size,
    "tojson": lambda v, a, k, lim: _len(v, lim) * (1 + _json_indent(_int_arg(a, k, 0, "indent", None))),
    "pprint": lambda v, a, k, lim: _len(v, lim) * 2,
    "urlize": lambda v, a, k, lim: _len(v, lim) * 3,
    "escape": lambda v, a, k, lim: _len(v, lim) * 6,
    "e": lambda v, a, k, lim: _len(v, lim) * 6,
    "forceescape": lambda v, a, k, lim: _len(v, lim) * 6,
}


def _json_indent(indent: Any) -> int:
    width = 0 if indent is None else _width(indent)
    if width > MAX_JSON_INDENT:
        raise TemplateLimit(f"tojson's indent may be at most {MAX_JSON_INDENT}")
    return width * MAX_DEPTH


def _format_filter(env: BoundedEnvironment, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise jinja2.FilterArgumentError("can't handle positional and keyword arguments at the same time")
    return env.percent_format(str(value), kwargs or args)


def _join_filter(env: BoundedEnvironment, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """Jinja's ``join``, counting as it goes: a generator's items are never all kept before the check."""
    if attribute is not None:
        value = map(jinja2.filters.make_attrgetter(env, attribute), value)
    out: list[str] = []
    size = 0
    for item in value:
        size += measure(item, env.max_chars) + len(str(d))
        if size > env.max_chars:
            raise env._refuse(f"the join filter would make more than {_plural(size, 'characters')}")
        out.append(str(item))
    return str(d).join(out)


def _string_method_check(size: Callable[[Any, tuple, dict, int], int]) -> Callable[..., None]:
    def check(env: BoundedEnvironment, owner: Any, args: tuple, kwargs: dict) -> None:
        for value in (*args, *kwargs.values()):
            env.check_value(value, "a string method's argument")
        env.check_size(size(owner, args, kwargs, env.max_chars), "a string method")

    return check


def _same_size(owner: Any, args: tuple, kwargs: dict, limit: int) -> int:
    return len(owner)


_pad = _string_method_check(lambda s, a, k, lim: max(len(s), _width(_int_arg(a, k, 0, "width", 0))))
_STRING_METHODS: dict[str, Callable[..., None]] = {
    **{name: _string_method_check(_same_size) for name in (
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isascii",
        "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle",
        "isupper", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
        "upper", "decode", "hex",
    )},  # fmt: skip
    "encode": _string_method_check(lambda s, a, k, lim: 4 * len(s)),
    "center": _pad, "ljust": _pad, "rjust": _pad, "zfill": _pad,
    "expandtabs": _string_method_check(
        lambda s, a, k, lim: len(s) * max(1, _width(_int_arg(a, k, 0, "tabsize", 8)))
    ),
    "replace": _string_method_check(
        lambda s, a, k, lim: _replace_size(s, _int_arg(a, k, 0, "old", ""), _int_arg(a, k, 1, "new", ""),
                                           _int_arg(a, k, 2, "count", -1), lim)
    ),
    "join": _string_method_check(lambda s, a, k, lim: _join_size(a[0] if a else (), (s,), {}, lim)),
}  # fmt: skip  (str.format and format_map are wrapped on access: see wrap_str_format)


__all__ = [
    "DEFAULT_MAX_CHARS", "MAX_INT_BITS", "MAX_RANGE", "MAX_RANGE_STEPS", "BoundedEnvironment", "ConfinedLoader",
    "TemplateLimit", "confined", "measure", "render_bounded", "strip_front_matter",
]  # fmt: skip
