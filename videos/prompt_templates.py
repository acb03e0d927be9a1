"""Prompt templates: a saved prompt version may hold placeholders such as `{product}`, filled
from a batch row's variables.

Rendering is strict: a placeholder without a value, or a value no placeholder asks for, is an
error, never an empty string or a silent leftover. `{{` and `}}` stand for literal braces.
Placeholders are plain names (letters, digits, underscores); anything else in braces is an
error, so a typo cannot pass as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """The template, or the values given for it, cannot make a prompt; says why.

    `problems` names each variable at fault (missing, or given but not asked for) with its own
    message; it is empty when the template itself is malformed.
    """

    def __init__(self, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or {}


def _pieces(template: str) -> list[tuple[str, bool]]:
    """The template as (text, is_placeholder) pieces, escapes already undone."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in TOKEN.finditer(template):
        pieces.append((template[position : match.start()], False))
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append((token[0], False))
        elif token in ("{", "}"):
            raise TemplateError(
                f"A lone '{token}' at character {match.start() + 1}: write '{token * 2}' for a "
                "brace, or {name} for a variable."
            )
        else:
            name = match.group(1).strip()
            if not NAME.fullmatch(name):
                raise TemplateError(
                    f"'{token}' is not a variable: names are letters, digits and underscores, "
                    "like {product}."
                )
            pieces.append((name, True))
        position = match.end()
    pieces.append((template[position:], False))
    return pieces


def variables_of(template: str) -> list[str]:
    """The template's variable names, in order of first use (empty for a malformed one)."""
    try:
        pieces = _pieces(template)
    except TemplateError:
        return []
    return list(dict.fromkeys(text for text, placeholder in pieces if placeholder))


def check(template: str) -> None:
    """Raise TemplateError if the template is malformed."""
    _pieces(template)


def render(template: str, values: Mapping[str, object]) -> str:
    """The template with every variable replaced by its value.

    Raises TemplateError naming every missing variable and every value nothing asks for.
    """
    pieces = _pieces(template)
    wanted = list(dict.fromkeys(text for text, placeholder in pieces if placeholder))
    missing = [name for name in wanted if _blank(values.get(name))]
    extra = sorted(set(values) - set(wanted))
    problems = {name: f"No value for {{{name}}}." for name in missing}
    problems.update({name: f"The prompt has no variable {{{name}}}." for name in extra})
    if problems:
        raise TemplateError(" ".join(problems.values()), problems)
    return "".join(str(values[text]) if placeholder else text for text, placeholder in pieces)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
