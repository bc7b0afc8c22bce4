"""The three outcomes of an exercise check, and what its messages say."""

import json
import traceback

import pytest
import torch

from phys555_cl.exercises import Case, CheckFailed, Returns, compare_outputs, make_check, results


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


# ---------------------------------------------------------------- "off by" never gives it away


def test_a_negated_result_is_called_the_wrong_sign_without_numbers():
    with pytest.raises(AssertionError) as err:
        check(lambda x: -reference(x))
    assert "wrong sign" in str(err.value)
    assert not any(ch.isdigit() for ch in str(err.value).split("),", 1)[1].split("Fix")[0])


@pytest.mark.parametrize("factor, words", [(2.0, "constant factor of 2"),
                                           (0.5, "constant factor of 1/2"),
                                           (2.5, "constant factor of 5/2")])
def test_a_constant_factor_is_named(factor, words):
    with pytest.raises(AssertionError, match=words):
        check(lambda x: factor * reference(x))


def _scalar_check():
    return make_check("9.4", "a sum", lambda x: x.sum(),
                      lambda: [Case("three numbers", torch.tensor([4.0, 5.0, 6.0]))])


@pytest.mark.parametrize("student", [lambda x: -x.sum(), lambda x: x.sum() / 2,
                                     lambda x: x.sum() * 0, lambda x: x.sum() * 3.7,
                                     lambda x: x.sum() + 15.0])
def test_a_scalar_message_prints_neither_the_expected_value_nor_a_difference_equal_to_it(
        student):
    with pytest.raises(AssertionError) as err:
        _scalar_check()(student)
    assert "15" not in str(err.value).replace("(tolerance", "")


# ---------------------------------------------------------------- typical mistakes


def _two_cases():
    return [Case("three numbers", torch.tensor([1.0, 2.0, 3.0])),
            Case("four numbers", torch.tensor([1.0, 2.0, 3.0, 4.0]))]


def _inf_on_three(x):
    return x.sum() + (float("inf") if len(x) == 3 else 1.0)


def test_a_mistake_that_is_not_finite_on_a_case_never_matches_there():
    inf_check = make_check("9.5", "a sum", lambda x: x.sum(), _two_cases,
                           mistakes=[(_inf_on_three, "one is added.")])
    with pytest.raises(AssertionError) as err:
        inf_check(lambda x: x.sum() + 5.0)
    assert "typical mistake" not in str(err.value)
    with pytest.raises(AssertionError, match="one is added"):  # it matches where defined
        inf_check(lambda x: x.sum() + 1.0)


def test_a_mistake_must_match_on_every_case_not_only_the_failing_one():
    partial = make_check("9.6", "a sum", lambda x: x.sum(), _two_cases,
                         mistakes=[(lambda x: x.sum() + 1.0, "one is added.")])
    with pytest.raises(AssertionError) as err:
        partial(lambda x: x.sum() + (1.0 if len(x) == 3 else 2.0))
    assert "typical mistake" not in str(err.value)


def test_two_mistakes_that_both_match_give_no_hint():
    twins = make_check("9.7", "a sum", lambda x: x.sum(), _two_cases,
                       mistakes=[(lambda x: x.sum() * 2, "doubled."),
                                 (lambda x: x.sum() + x.sum(), "added twice.")])
    with pytest.raises(AssertionError) as err:
        twins(lambda x: 2 * x.sum())
    assert "typical mistake" not in str(err.value)


def test_a_gradient_problem_never_gets_a_value_hint():
    w = torch.ones(3, requires_grad=True)
    grad_check = make_check("9.8", "loss", lambda w: (w * 2).sum(), lambda: [Case("w", w)],
                            mistakes=[(lambda w: (w * 3).sum(), "three, not two.")])
    with pytest.raises(AssertionError) as err:
        grad_check(lambda w: (w * 2).sum().detach())
    assert "carries no gradient" in str(err.value) and "typical mistake" not in str(err.value)


# ---------------------------------------------------------------- the type contract


def test_the_contract_asks_for_a_python_float():
    contract = Returns.python_float(why="the loop prints it")
    assert contract.problem(1.5) is None
    text = contract.problem(torch.tensor(1.5, requires_grad=True))
    assert "Python float" in text and "loss.item()" in text and "the loop prints it" in text


def test_the_contract_asks_for_a_differentiable_scalar():
    contract = Returns.tensor(scalar=True, grad=True)
    x = torch.ones(3, requires_grad=True)
    assert contract.problem(x.sum(), (x,)) is None
    assert "shape ()" in contract.problem(x * 2, (x,))
    assert "carries no gradient" in contract.problem(x.sum().detach(), (x,))
    assert contract.problem(x.sum().detach(), (x.detach(),)) is None  # no gradient asked for
    assert "torch.Tensor" in contract.problem(3.0, (x,))


def test_the_contract_asks_for_integer_labels_and_the_input_dtype():
    labels = Returns.tensor(dtype=torch.int64)
    assert labels.problem(torch.zeros(3, dtype=torch.int64)) is None
    assert ".argmax()" in labels.problem(torch.zeros(3))
    same = Returns.tensor(dtype="input")
    doubles = torch.ones(2, dtype=torch.float64)
    assert same.problem(torch.zeros(2, dtype=torch.float64), (doubles,)) is None
    assert "float64" in same.problem(torch.zeros(2), (torch.ones(2, dtype=torch.float64),))


def test_the_contract_of_one_number_accepts_a_float_or_a_one_element_tensor():
    number = Returns.number()
    assert number.problem(0.5) is None and number.problem(torch.tensor(0.5)) is None
    assert "one number" in number.problem(torch.ones(3))


def test_a_check_reports_a_broken_contract_before_the_values():
    typed = make_check("9.9", "row norms", reference, cases,
                       returns=Returns.tensor(dtype="input"),
                       mistakes=[(lambda x: (x ** 2).sum(dim=1), "the square root is missing.")])
    with pytest.raises(AssertionError) as err:
        typed(lambda x: (x ** 2).sum(dim=1).double())
    assert "dtype torch.float64" in str(err.value) and "typical mistake" not in str(err.value)


# ---------------------------------------------------------------- the message comes first


def test_in_jupyter_the_message_comes_first_then_only_the_students_frames():
    def student(x):
        y = x * 2
        return y.nonexistent()

    with pytest.raises(CheckFailed) as err:
        check(student)
    lines = err.value._render_traceback_()
    assert lines[0].startswith("AssertionError: Exercise 9.1 (row norms) is not right yet: on "
                               "case 1 of 2")
    text = "\n".join(lines)
    assert "return y.nonexistent()" in text and __file__ in text
    assert "core.py" not in text and "site-packages" not in text


def test_in_plain_python_the_traceback_stays_complete():
    def student(x):
        return x.nonexistent()

    with pytest.raises(CheckFailed) as err:
        check(student)
    text = "".join(traceback.format_exception(err.value))
    assert "core.py" in text and "direct cause" in text and "x.nonexistent()" in text


def test_the_messages_say_run_this_cell_again_with_single_full_stops(capsys):
    for student in (lambda x: (x ** 2).sum(dim=1), lambda x: x.nonexistent()):
        with pytest.raises(AssertionError) as err:
            check(student)
        assert "run this cell again" in str(err.value) and "run its cell" not in str(err.value)
        assert ".." not in str(err.value)

    def unfinished(x):
        raise NotImplementedError

    check(unfinished)
    out = capsys.readouterr().out
    assert "run this cell again" in out and ".." not in out


# ---------------------------------------------------------------- the record a grader reads


def test_every_outcome_is_recorded_for_a_grading_tool(monkeypatch, tmp_path, capsys):
    path = tmp_path / "results.json"
    monkeypatch.setenv("PHYS555_CHECK_RESULTS", str(path))

    def unfinished(x):
        raise NotImplementedError

    check(unfinished)
    assert results()["9.1"]["status"] == "not done"
    with pytest.raises(AssertionError):
        check(lambda x: (x ** 2).sum(dim=1))
    record = results()["9.1"]
    assert record["status"] == "wrong" and "square root is missing" in record["message"]
    assert record["title"] == "row norms"
    check(lambda x: torch.linalg.vector_norm(x, dim=1))
    assert results()["9.1"]["status"] == "right"
    assert json.loads(path.read_text())["9.1"]["status"] == "right"
