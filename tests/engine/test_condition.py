import pytest

from runs.engine.condition import ConditionError, evaluate_condition


@pytest.mark.parametrize("op, left, right, expected", [
    ("EQUAL_TO", "12", "12", True),
    ("EQUAL_TO", "12.0", "12", False),  # text comparison
    ("NOT_EQUAL", "12.0", "12", True),
    ("EQUAL_TO", "true", "true", True),
    ("GREATER_THAN_OR_EQUAL", "12.0", "12", True),  # numeric comparison
    ("GREATER_THAN", "12.0", "12", False),
    ("LESS_THAN", "-1e3", "0", True),
    ("LESS_THAN_OR_EQUAL", " 7 ", "7", True),
    ("GREATER_THAN", "10", "9", True),  # numbers, not text ("10" < "9" as text)
])
def test_condition_ops(op, left, right, expected):
    assert evaluate_condition(op, left, right) is expected


@pytest.mark.parametrize("left, right, side", [("abc", "1", "left"), ("1", "", "right"), ("nan", "1", "left"),
                                               ("1", "inf", "right")])
def test_a_numeric_op_on_something_that_is_not_a_finite_number_says_which_side(left, right, side):
    with pytest.raises(ConditionError, match=f"the {side} operand"):
        evaluate_condition("GREATER_THAN", left, right)


def test_an_unknown_op_is_an_error():
    with pytest.raises(ConditionError, match="Unknown condition op 'LIKE'"):
        evaluate_condition("LIKE", "a", "b")
