"""Strict rendering of prompt templates."""

from __future__ import annotations

import pytest

from videos.prompt_templates import TemplateError, render, variables_of


def test_variables_fill_their_placeholders():
    text = "A {product} on a table in {city}, then the {product} spins"
    assert variables_of(text) == ["product", "city"]
    assert render(text, {"product": "teapot", "city": "Lyon"}) == (
        "A teapot on a table in Lyon, then the teapot spins"
    )


def test_a_missing_variable_is_an_error_never_an_empty_string():
    with pytest.raises(TemplateError, match=r"No value for \{city\}"):
        render("A {product} in {city}", {"product": "teapot"})
    with pytest.raises(TemplateError, match=r"No value for \{city\}"):
        render("A {product} in {city}", {"product": "teapot", "city": "  "})


def test_a_value_nothing_asks_for_is_an_error():
    with pytest.raises(TemplateError, match=r"has no variable \{colour\}") as error:
        render("A {product}", {"product": "teapot", "colour": "red"})
    assert error.value.problems == {"colour": "The prompt has no variable {colour}."}


def test_doubled_braces_are_literal_braces():
    assert variables_of('JSON like {{"a": {n}}}') == ["n"]
    assert render('JSON like {{"a": {n}}}', {"n": 1}) == 'JSON like {"a": 1}'
    assert render("no variables {{here}}", {}) == "no variables {here}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a lone { brace", "lone '{'"),
        ("a lone } brace", "lone '}'"),
        ("{0} positional", "is not a variable"),
        ("{a.b} attribute", "is not a variable"),
        ("{a!r} conversion", "is not a variable"),
        ("{} empty", "is not a variable"),
    ],
)
def test_anything_else_in_braces_is_an_error(template, message):
    with pytest.raises(TemplateError, match=message):
        render(template, {})
    assert variables_of(template) == []
