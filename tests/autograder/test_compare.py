import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.compare import CheckFailure, check_number, check_prediction, check_tensor


def message(fn, *args, **kw) -> str:
    with pytest.raises(CheckFailure) as info:
        fn(*args, **kw)
    return str(info.value)


def test_equal_tensors_pass():
    check_tensor(torch.ones(3), torch.ones(3), "x")


def test_shape_dtype_device_and_type_are_named():
    assert "expected shape (3,), got (2,)" in message(check_tensor, torch.ones(2), torch.ones(3), "x")
    assert "expected dtype torch.float32, got torch.float64" in message(
        check_tensor, torch.ones(3, dtype=torch.float64), torch.ones(3), "x")
    assert "expected a tensor, got list" in message(check_tensor, [1.0], torch.ones(1), "x")


def test_first_differing_element_is_reported():
    got = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    text = message(check_tensor, got, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "result")
    assert "1 of 4 elements differ; first at index [1, 1]: expected 4, got 5" in text


def test_known_mistake_is_named():
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    text = message(check_tensor, expected.T, expected, "m", mistakes={"it is transposed": expected.T})
    assert "Likely cause: it is transposed" in text


def test_nan_is_reported():
    assert "NaN or inf" in message(check_tensor, torch.tensor([float("nan")]), torch.tensor([1.0]), "x")


def test_numbers():
    check_number(torch.tensor(0.5), 0.5, "x")
    assert "expected 0.5, got 50" in message(check_number, 50.0, 0.5, "acc", mistakes={"percent": 50.0})
    assert "Likely cause: percent" in message(check_number, 50.0, 0.5, "acc", mistakes={"percent": 50.0})
    assert "expected a number" in message(check_number, "0.5", 0.5, "x")
    assert "expected a number" in message(check_number, True, 1.0, "x")


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_first_difference_points_at_a_real_difference(rows, cols, data):
    expected = torch.zeros(rows, cols)
    i, j = data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, cols - 1))
    got = expected.clone()
    got[i, j] = 1.0
    text = message(check_tensor, got, expected, "x")
    assert f"first at index [{i}, {j}]: expected 0, got 1" in text


def test_prediction_numbers_name_known_wrong_answers_and_give_the_reasoning():
    check_prediction(0.2, 0.2, "p (the step)")
    check_prediction(torch.tensor(0.20001), 0.2, "p (the step)")
    text = message(check_prediction, 2.0, 0.2, "p (the step)", mistakes={"the learning rate was left out": 2.0},
                   why="the step is lr times the gradient")
    assert "p (the step): expected" in text and "the learning rate was left out" in text
    assert text.endswith("Reasoning: the step is lr times the gradient")
    assert "expected a number" in message(check_prediction, "0.2", 0.2, "p (the step)")


def test_prediction_choices_accept_any_case_and_reject_other_letters():
    check_prediction(" B ", "b", "q (which curve)", choices="abc")
    assert "q should be one of the letters 'a', 'b', 'c', got" in message(
        check_prediction, "d", "b", "q (which curve)", choices="abc")
    assert "'a' is not what happens; look at the plot" in message(
        check_prediction, "a", "b", "q (which curve)", choices="abc", wrong_choice="look at the plot")


def test_prediction_shapes_and_counts_name_the_mistake_and_give_the_reasoning():
    check_prediction(torch.Size([5, 64]), (5, 64), "shape", why="w")
    check_prediction([5, 64], (5, 64), "shape", why="w")
    text = message(check_prediction, (64, 5), (5, 64), "shape", why="the .T swaps", mistakes={"forgot .T": (64, 5)})
    assert "expected (5, 64), got (64, 5)" in text and "Likely cause: forgot .T" in text and "Reasoning: the .T" in text
    assert "expected a shape" in message(check_prediction, "5, 64", (5, 64), "shape", why="w")
    assert "expected a shape" in message(check_prediction, (5.0, 64), (5, 64), "shape", why="w")
    check_prediction(2.3026, 2.302585, "loss", why="w")
    text = message(check_prediction, 1.0, 2.302585, "loss", why="ln 10", mistakes={"log10": 1.0})
    assert "Likely cause: log10" in text and "Reasoning: ln 10" in text
    assert "expected 3.12356e+06" in message(check_prediction, 3122500, 3123560, "count", why="w", rtol=0, atol=0.5)


def test_learning_rate_accepts_numbers_and_one_element_tensors_only():
    from autograder.compare import learning_rate

    assert learning_rate(3e-3, "lr") == 3e-3 and learning_rate(torch.tensor(0.1), "lr") == pytest.approx(0.1)
    for bad in (True, "0.1", float("nan"), 0.0, -1.0, 20.0, torch.ones(2)):
        assert "lr should be a positive float" in message(learning_rate, bad, "lr")
