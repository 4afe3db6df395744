"""One type rule for every component parameter, from a TOML file or the command line."""

import pytest

from dece.component import convert
from dece.attacks import get_attack


@pytest.mark.parametrize("kind, value, expected", [
    (int, 3, 3), (float, 3, 3.0), (float, 0.5, 0.5), (str, "cf", "cf"), (bool, True, True),
    (int | None, None, None), (tuple[str, ...], ["a", "b"], ("a", "b")), (tuple[str, ...], " a, b", ("a", "b")),
    (tuple[str, ...], [" or 1=1", "# c "], (" or 1=1", "# c ")),
])
def test_values_of_the_declared_type_are_accepted(kind, value, expected):
    assert convert(kind, value) == expected


@pytest.mark.parametrize("kind, value, message", [
    (int, "3", "expected an integer, got '3'"), (int, True, "expected an integer"), (float, "0.5", "expected a number"),
    (str, 1, "expected a string, got 1"), (bool, 1, "expected a boolean"), (tuple[str, ...], [1], "list of strings"),
    (float | None, "high", "expected a number or none"), (tuple[str, ...], "a, b,", "item 3 of 'a, b,' is empty"),
    (tuple[str, ...], ["a", " "], "item 2 of .* is empty"), (tuple[str, ...], "", "item 1 of '' is empty"),
])
def test_text_is_never_a_number_and_nothing_else_is_coerced(kind, value, message):
    with pytest.raises(ValueError, match=message):
        convert(kind, value)


def test_cli_values_are_read_as_the_component_declares_them():
    from dece.attacks import ATTACKS
    from dece.component import parse_cli_params
    from dece.defenses import DEFENSES
    from dece.errors import ConfigError

    assert parse_cli_params(ATTACKS.get("deadcode_defect"), ["target_label=1"], "--param") == {"target_label": "1"}
    assert parse_cli_params(ATTACKS.get("badpre"), ["count=2", "word=cf"], "--param") == {"count": 2, "word": "cf"}
    onion = DEFENSES.get("onion")
    assert parse_cli_params(onion, ["threshold=0.2", "lm=hf:gpt2"], "--defense-param") == {"threshold": 0.2, "lm": "hf:gpt2"}
    assert parse_cli_params(onion, ["threshold=none"], "--defense-param") == {"threshold": None}
    assert parse_cli_params(ATTACKS.get("badpre"), ["count=two"], "--param") == {"count": "two"}  # refused by build
    with pytest.raises(ConfigError, match="--param: expected KEY=VALUE"):
        parse_cli_params(ATTACKS.get("badpre"), ["count"], "--param")
    comment = ATTACKS.get("comment_summary")
    assert parse_cli_params(comment, ['comments=["# a, b", "# c"]'], "--param") == {"comments": ["# a, b", "# c"]}
    assert get_attack("comment_summary", **parse_cli_params(comment, ["comments=# a, # b"], "--param")).comments == ("# a", "# b")
    with pytest.raises(ConfigError, match="--param: 'count' given twice"):
        parse_cli_params(ATTACKS.get("badpre"), ["count=2", "count=3"], "--param")
    with pytest.raises(ConfigError, match="--param comments: a list given as .* JSON list"):
        parse_cli_params(comment, ['comments=["# a, b"'], "--param")
