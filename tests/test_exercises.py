"""The three outcomes of an exercise check, and what its messages say."""

import pytest
import torch

from phys555_cl.exercises import Case, compare_outputs, make_check


def reference(x):
    return (x ** 2).sum(dim=1).sqrt()


def cases():
    g = torch.Generator().manual_seed(0)
    return [Case("4 vectors in 3-D", torch.randn(4, 3, generator=g)),
            Case("one vector", torch.randn(1, 5, generator=g))]


check = make_check("9.1", "row norms", reference, cases,
                   mistakes=[(lambda x: (x ** 2).sum(dim=1), "the square root is missing.")])


def test_not_implemented_returns_the_reference_and_says_so(capsys):
    def student(x):
        raise NotImplementedError("Exercise 9.1: hint")

    assert check(student) is reference
    out = capsys.readouterr().out
    assert "Exercise 9.1" in out and "not done yet" in out
    assert out.count("\n") == 1, "one friendly line"


def test_a_right_answer_returns_the_students_function(capsys):
    def student(x):
        return torch.linalg.vector_norm(x, dim=1)

    assert check(student) is student
    assert "correct on all 2 cases" in capsys.readouterr().out


def test_wrong_shape_names_the_case_and_both_shapes():
    with pytest.raises(AssertionError) as err:
        check(lambda x: (x ** 2).sum(dim=0).sqrt())
    message = str(err.value)
    assert "case 1 of 2 ('4 vectors in 3-D')" in message
    assert "shape (3,)" in message and "expected shape (4,)" in message


def test_wrong_values_give_a_relative_error_and_the_tolerance_but_not_the_answer():
    x = cases()[0].args[0]
    expected = reference(x)
    with pytest.raises(AssertionError) as err:
        check(lambda x: (x ** 2).sum(dim=1).sqrt() + torch.tensor([0.3, 0.0, 0.1, 0.0]))
    message = str(err.value)
    assert "off in 2 of 4 entries" in message and "of the largest expected magnitude" in message
    assert "tolerance" in message
    for value in expected.tolist():
        assert f"{value:.3f}" not in message and f"{value:.3g}" not in message


def test_a_typical_mistake_is_named():
    with pytest.raises(AssertionError, match="square root is missing"):
        check(lambda x: (x ** 2).sum(dim=1))


def test_wrong_dtype_is_reported():
    with pytest.raises(AssertionError, match="dtype torch.float64"):
        check(lambda x: reference(x).double())


def test_a_crash_is_reported_with_the_case_and_the_exception():
    def student(x):
        return x.nonexistent()

    with pytest.raises(AssertionError, match=r"raised AttributeError"):
        check(student)


def test_numpy_instead_of_torch_is_explained():
    with pytest.raises(AssertionError, match="should be a torch.Tensor"):
        check(lambda x: reference(x).numpy())


def test_a_detached_result_is_reported_when_a_gradient_is_needed():
    def grad_reference(w):
        return (w * 2).sum()

    w = torch.ones(3, requires_grad=True)
    grad_check = make_check("9.2", "loss", grad_reference, lambda: [Case("w", w)])
    with pytest.raises(AssertionError, match="carries no gradient"):
        grad_check(lambda w: (w * 2).sum().detach())


def test_inputs_are_copied_so_an_in_place_edit_cannot_fool_the_check():
    def student(x):
        x.mul_(0)
        return reference(x)

    with pytest.raises(AssertionError):
        check(student)


def test_nan_output_is_reported_as_such():
    with pytest.raises(AssertionError, match="NaN"):
        check(lambda x: reference(x) * float("nan"))


def test_custom_compare_for_random_outputs():
    def compare(got, expected, case):
        return None if got.std() > 0 else "all images got the same random draw"

    random_check = make_check("9.3", "noise", lambda x: x + torch.randn_like(x),
                              lambda: [Case("batch", torch.zeros(8))], compare=compare)
    with pytest.raises(AssertionError, match="same random draw"):
        random_check(lambda x: x + 1.0)


def test_passing_the_result_instead_of_the_function_is_explained():
    with pytest.raises(TypeError, match="pass the function itself"):
        check(torch.zeros(3))


def test_compare_outputs_handles_tuples_and_numbers():
    assert compare_outputs((torch.ones(2), 1.0), (torch.ones(2), 1.0)) is None
    assert "item 1" in compare_outputs((torch.ones(2), 2.0), (torch.ones(2), 1.0))
    assert "should be a tuple of 2 items" in compare_outputs(torch.ones(2), (1, 2))
