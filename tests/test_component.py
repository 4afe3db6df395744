"""One type rule for every component parameter, from a TOML file or the command line."""

import pytest

from dece.component import convert


@pytest.mark.parametrize("kind, value, expected", [
    (int, 3, 3), (float, 3, 3.0), (float, 0.5, 0.5), (str, "cf", "cf"), (bool, True, True),
    (int | None, None, None), (tuple[str, ...], ["a", "b"], ("a", "b")), (tuple[str, ...], "a, b,", ("a", "b")),
])
def test_values_of_the_declared_type_are_accepted(kind, value, expected):
    assert convert(kind, value) == expected


@pytest.mark.parametrize("kind, value, message", [
    (int, "3", "expected an integer, got '3'"), (int, True, "expected an integer"), (float, "0.5", "expected a number"),
    (str, 1, "expected a string, got 1"), (bool, 1, "expected a boolean"), (tuple[str, ...], [1], "list of strings"),
    (float | None, "high", "expected a number or none"),
])
def test_text_is_never_a_number_and_nothing_else_is_coerced(kind, value, message):
    with pytest.raises(ValueError, match=message):
        convert(kind, value)
