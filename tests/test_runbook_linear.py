"""The importer's cost grows in proportion to the runbook (issue 8, point 12).

No timings (the machine is shared and noisy): the tests count operations instead.
Whole-text scans are counted by handing the parser a string that tallies the
characters each scan of it touches; regular expressions are checked for the
shapes that make a regex engine backtrack quadratically. No Django, no database."""

from __future__ import annotations

import re
from importlib import import_module
from re import _constants as C
from re import _parser as sre_parse

import pytest

from incidents.runbook import frontmatter, parse, severity, shapes, slugs, tree
from incidents.runbook.parse import _Parser
from probes import recognise, shell, text
from probes.families import FAMILIES
from probes.shell import split_sql


class CountingText(str):
    """A str that adds up the characters touched by whole-string operations on it
    (slices, counts, splits, strips): the parser's scans of the text it was given."""

    touched = 0

    def _tally(self, n: int) -> None:
        CountingText.touched += n

    def __getitem__(self, key):  # noqa: ANN001, ANN204
        result = str.__getitem__(self, key)
        self._tally(len(result))
        return result

    def count(self, sub, start=None, end=None):  # noqa: ANN001, ANN201
        lo, hi, _ = slice(start, end).indices(len(self))
        self._tally(max(hi - lo, 0))
        return str.count(self, sub, start, end)

    def split(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self._tally(len(self))
        return str.split(self, *args, **kwargs)

    def rstrip(self, *args):  # noqa: ANN002, ANN201
        self._tally(len(self))
        return str.rstrip(self, *args)

    def strip(self, *args):  # noqa: ANN002, ANN201
        self._tally(len(self))
        return str.strip(self, *args)

    def splitlines(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self._tally(len(self))
        return str.splitlines(self, *args, **kwargs)


def runbook_with(blocks: int) -> str:
    steps = "".join(
        f"{n}. **Step {n}**\n   ```bash\n   df -h /data/{n}\n   ```\n"
        for n in range(1, blocks + 1)
    )
    return f"# R\n\n## 1. Disk Full\n\n### Steps\n\n{steps}"


def touched_per_character(action) -> float:  # noqa: ANN001
    CountingText.touched = 0
    action()
    return CountingText.touched


@pytest.mark.parametrize("blocks", [10, 400])
def test_checking_the_fences_scans_the_text_a_bounded_number_of_times(blocks):
    text = runbook_with(blocks)
    parser = _Parser(CountingText(text), "sha")
    touched = touched_per_character(parser.check_fences)
    # Before: the whole text was split again for every code block (400 x the text).
    assert touched <= 2 * len(text), (touched, len(text))


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM t WHERE id = $1;\n",
        "SELECT $$x$$, pg_cancel_backend(pid); -- note\n",
        "/* why */ UPDATE t SET a = 'it''s' WHERE b = $2;\n",
    ],
)
def test_splitting_sql_touches_each_character_a_bounded_number_of_times(statement):
    code = statement * 500
    touched = touched_per_character(lambda: split_sql(CountingText(code)))
    # Before: each statement recounted the lines before it, and every `$` copied
    # the rest of the block (both quadratic in the block's length).
    assert touched <= 3 * len(code), (touched, len(code))
    assert len(split_sql(code).pieces) == 500


# --- regular expressions -----------------------------------------------------------

# Characters to decide whether two character sets overlap.
SAMPLE = [chr(c) for c in range(1, 128)] + list("é→–—⇒➜§\u00a0\u2003ß")
MAX = C.MAXREPEAT
REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT}
POSSESSIVE = getattr(C, "POSSESSIVE_REPEAT", None)


def _matches(op, av, ch: str, flags: int) -> bool:  # noqa: ANN001
    """Whether one parsed pattern item can match the character `ch`."""
    fold = bool(flags & re.I)
    candidates = {ch, ch.lower(), ch.upper()} if fold else {ch}
    if op is C.LITERAL:
        return chr(av) in candidates
    if op is C.NOT_LITERAL:
        return chr(av) not in candidates
    if op is C.ANY:
        return ch != "\n" or bool(flags & re.S)
    if op is C.IN:
        negate = av and av[0][0] is C.NEGATE
        found = any(_in_item(o, a, c) for o, a in av for c in candidates)
        return found != negate
    return True  # anything else: assume it can


def _in_item(op, av, ch: str) -> bool:  # noqa: ANN001
    if op is C.LITERAL:
        return ch == chr(av)
    if op is C.RANGE:
        return av[0] <= ord(ch) <= av[1]
    if op is C.CATEGORY:
        name = str(av).rsplit("_", 1)[-1].lower()
        pattern = {"digit": r"\d", "space": r"\s", "word": r"\w"}.get(name, ".")
        positive = not str(av).upper().startswith("CATEGORY_NOT")
        return bool(re.match(pattern, ch)) == positive
    return False


def first_chars(items, flags: int) -> set[str] | None:  # noqa: ANN001
    """The characters the sequence `items` can start with (None: unknown, or it can
    match the empty string)."""
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue
        if op is C.SUBPATTERN:
            return first_chars(av[-1], flags)
        if op is C.BRANCH:
            sets = [first_chars(branch, flags) for branch in av[1]]
            return None if None in sets else set().union(*sets)
        if op in REPEATS or op is POSSESSIVE:
            low, _, body = av
            return first_chars(body, flags) if low > 0 else None
        return {ch for ch in SAMPLE if _matches(op, av, ch, flags)}
    return None


def repeat_chars(av, flags: int) -> set[str]:  # noqa: ANN001
    _, _, body = av
    return first_chars(body, flags) or set(SAMPLE)


def _flat(items) -> list:  # noqa: ANN001
    """The items of a sequence with its groups opened in place."""
    out = []
    for op, av in items:
        if op is C.SUBPATTERN:
            out += _flat(av[-1])
        else:
            out.append((op, av))
    return out


def _unbounded(op, av) -> bool:  # noqa: ANN001
    return (op in REPEATS or op is POSSESSIVE) and av[1] is MAX


def backtracking_shapes(items, flags: int, anchored: bool, where: str) -> list[str]:  # noqa: ANN001
    """Quadratic shapes in a pattern (its top-level sequence, and every group):

    - two unbounded, non-possessive repeats over overlapping characters with only
      optional items between them (`\\s*\\(?\\s*`): on a long run the engine tries
      every way of sharing the run between them before failing;
    - in an unanchored pattern, an unbounded repeat that something after it can make
      fail, where everything before it can also occur inside the run it consumes
      (`\\s*x`, `[a-z][\\w.]*=`, `](#[^)]+)`): the search starts again at every
      character of the run and rescans the rest of it. A leading negative
      lookbehind (`(?<![\\w.])`) keeps a search from starting inside the run."""
    seq = _flat(items)
    if not anchored and len(seq) == 1 and seq[0][0] is C.BRANCH:
        return [
            shape
            for branch in seq[0][1][1]
            for shape in backtracking_shapes(branch, flags, False, where)
        ]
    found: list[str] = []
    open_repeat: set[str] | None = None  # chars of an unbounded repeat still "open"
    for index, (op, av) in enumerate(seq):
        if op is C.BRANCH:
            for branch in av[1]:
                found += backtracking_shapes(branch, flags, True, where)
        elif op in REPEATS or op is POSSESSIVE:
            found += backtracking_shapes(av[2], flags, True, where)
        if op in REPEATS and av[1] is MAX:
            chars = repeat_chars(av, flags)
            if open_repeat is not None and open_repeat & chars:
                found.append(f"{where}: adjacent unbounded repeats at item {index}")
            open_repeat = chars
        elif (op in REPEATS and av[0] == 0) or op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # optional or zero-width: the open repeat stays open
        else:
            open_repeat = None
    guarded = bool(seq) and seq[0][0] is C.ASSERT_NOT and seq[0][1][0] == -1
    if anchored or guarded:
        return found
    for index, (op, av) in enumerate(seq):
        if not _unbounded(op, av):
            continue
        after = seq[index + 1 :]
        can_fail = any(not (o in REPEATS and a[0] == 0) for o, a in after)
        if not can_fail:
            continue
        run = repeat_chars(av, flags)
        before = [(o, a) for o, a in seq[:index] if o not in (C.AT, C.ASSERT)]
        inside = all(
            (chars := first_chars([item], flags)) is None or chars & run
            for item in before
        )
        if inside:
            found.append(f"{where}: a search restarts inside the run at item {index}")
    return found


def reading_modules() -> list:
    """Every module that reads runbook text: the parser, the engine's dispatcher,
    tokeniser and name finders, and each command family (its recogniser and the
    policies in its package)."""
    families = [import_module(path) for path in FAMILIES.values()]
    recognisers = [import_module(f"{path}.recognise") for path in FAMILIES.values()]
    return [
        parse,
        shapes,
        severity,
        frontmatter,
        tree,
        slugs,
        recognise,
        shell,
        text,
        *families,
        *recognisers,
    ]


def module_patterns() -> list[tuple[str, re.Pattern]]:
    out = []
    for module in reading_modules():
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                out.append((f"{module.__name__}.{name}", value))
    return out


@pytest.mark.parametrize(
    ("name", "pattern"), module_patterns(), ids=[n for n, _ in module_patterns()]
)
def test_no_pattern_can_backtrack_quadratically(name, pattern):
    tree = sre_parse.parse(pattern.pattern, pattern.flags)
    items = list(tree)
    anchored = bool(items) and items[0] == (C.AT, C.AT_BEGINNING)
    assert backtracking_shapes(items, pattern.flags, anchored, name) == []


def test_the_analysis_spots_the_shapes_it_is_meant_to():
    def shapes(source: str) -> list[str]:
        tree = sre_parse.parse(source, 0)
        items = list(tree)
        anchored = bool(items) and items[0] == (C.AT, C.AT_BEGINNING)
        return backtracking_shapes(items, 0, anchored, source)

    # The hints pattern of sql_parameters before issue 8 (8-10 s on one 20k word).
    assert shapes(r"([A-Za-z_][\w.]*)\s*(?:=|<>|!=|<=|>=|<|>|\bIN\b)\s*\(?\s*\$(\d+)")
    assert shapes(r"\s*(?:→|->)\s*")
    assert shapes(r"^\s*(?:[-*+]\s+)?\s*x")
    assert not shapes(r"(?<![\w.])([A-Za-z_][\w.]*+)\s*+=\s*+\(?\s*+\$(\d+)")
    assert not shapes(r"\$(\d+)")
    assert not shapes(r"^(\d+)\s*x")


def test_every_runbook_module_pattern_is_checked():
    """Inline patterns escape the check above: the modules keep theirs compiled at
    module level (a pattern added inline shows up here as a failure)."""
    inline = re.compile(
        r"\bre\.(?:match|search|sub|findall|finditer|split|fullmatch)\("
    )
    offenders = []
    for module in reading_modules():
        with open(module.__file__, encoding="utf-8") as file:
            source = file.read()
        offenders += [
            f"{module.__name__}: {m.group(0)}" for m in inline.finditer(source)
        ]
    assert offenders == []
