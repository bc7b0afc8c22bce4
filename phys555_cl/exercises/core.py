"""The mechanism behind every exercise check in the course notebooks.

A check runs the student's function on a few fixed cases and compares it with the package's
reference implementation. It has exactly three outcomes:

- **not done yet** (the function still raises ``NotImplementedError``): one friendly line, and
  the *reference* is handed back so the rest of the notebook still runs;
- **wrong** (wrong type, shape, dtype or value, or the function raises): an ``AssertionError``
  that names the case and says how the result is wrong (expected shape vs got, max error and
  tolerance, a typical mistake it looks like) without ever printing the expected values;
- **right**: one line saying so, and the *student's* function is handed back.

Adding a check for a new exercise takes a few lines::

    def _cases():
        g = torch.Generator().manual_seed(0)
        return [Case("5 points in 3-D", torch.randn(5, 3, generator=g)),
                Case("one point", torch.randn(1, 3, generator=g))]

    check_my_norm = make_check("1.1", "row norms", reference=my_reference, cases=_cases,
                               mistakes=[(lambda x: (x**2).sum(1), "the square root is missing")])

and in the notebook, right after the exercise cell: ``my_norm = ex.check_my_norm(my_norm)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Case", "ExerciseCheck", "make_check", "compare_outputs"]


@dataclass
class Case:
    """One fixed input of a check: a description a student can read, and the arguments."""

    description: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __init__(self, description: str, *args, **kwargs):
        self.description = description
        self.args = args
        self.kwargs = kwargs

    def inputs(self) -> tuple[tuple, dict]:
        """Fresh copies of the arguments, so a function that edits its input in place cannot
        change what the next function sees."""
        return _clone(self.args), _clone(self.kwargs)


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(obj.requires_grad)
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, torch.Generator):
        g = torch.Generator(device=obj.device)
        g.set_state(obj.get_state())
        return g
    if isinstance(obj, torch.nn.Module):
        return copy.deepcopy(obj)
    return obj


def _describe_type(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a torch.Tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape}"
    return f"a {type(x).__name__}"


def compare_outputs(got, expected, *, atol: float = 1e-5, rtol: float = 1e-4,
                    where: str = "the result") -> str | None:
    """Compare a student's output with the expected one.

    Returns ``None`` when they agree, else a sentence saying what is wrong (shape, dtype,
    NaNs, largest error and the tolerance) that never reveals expected values.
    Tensors, numpy arrays, Python numbers, and tuples/lists/dicts of those are supported.
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            n = len(expected)
            return (f"{where} should be a {type(expected).__name__} of {n} items, "
                    f"but it is {_describe_type(got)}"
                    + (f" of {len(got)} items" if isinstance(got, (tuple, list)) else ""))
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare_outputs(g, e, atol=atol, rtol=rtol, where=f"item {i} of {where}")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{where} should be a dict, but it is {_describe_type(got)}"
        missing = sorted(set(expected) - set(got))
        if missing:
            return f"{where} is missing the key(s) {missing}"
        for k in expected:
            label = f"{where} ({k})" if isinstance(k, str) else f"{where}[{k!r}]"
            msg = compare_outputs(got[k], expected[k], atol=atol, rtol=rtol, where=label)
            if msg:
                return msg
        return None
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(got, expected, atol, rtol, where)
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"{where} should be a numpy array, but it is {_describe_type(got)}"
        return _compare_tensors(torch.from_numpy(got), torch.from_numpy(expected), atol, rtol,
                                where)
    if isinstance(expected, (bool, np.bool_)):
        if bool(got) != bool(expected):
            return f"{where} is {got!r}, which is not right"
        return None
    if isinstance(expected, (int, float, np.number)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, np.ndarray) and got.size == 1:
            got = got.item()
        if not isinstance(got, (int, float, np.number)):
            return f"{where} should be a number, but it is {_describe_type(got)}"
        if not math.isfinite(float(got)):
            return f"{where} is {got}, not a finite number"
        err = abs(float(got) - float(expected))
        tol = atol + rtol * abs(float(expected))
        if err > tol:
            return f"{where} is off by {err:.3g} (tolerance {tol:.1g})"
        return None
    if got != expected:
        return f"{where} is {got!r}, which is not right"
    return None


def _compare_tensors(got, expected: torch.Tensor, atol, rtol, where) -> str | None:
    if not isinstance(got, torch.Tensor):
        hint = " (return a torch.Tensor, not a numpy array or a Python number)" \
            if isinstance(got, (np.ndarray, float, int)) else ""
        return f"{where} should be a torch.Tensor, but it is {_describe_type(got)}{hint}"
    if got.shape != expected.shape:
        return (f"{where} has shape {tuple(got.shape)}, expected shape "
                f"{tuple(expected.shape)}")
    if got.dtype != expected.dtype:
        return f"{where} has dtype {got.dtype}, expected dtype {expected.dtype}"
    if expected.requires_grad and not got.requires_grad:
        return (f"{where} carries no gradient: keep every step in torch (no .item(), "
                f".detach(), .numpy() or torch.no_grad()) so that backward() can train through it")
    g = got.detach().cpu()
    e = expected.detach().cpu()
    if g.dtype == torch.bool or not (g.is_floating_point() or g.is_complex()):
        wrong = (g != e)
        if wrong.any():
            idx = tuple(int(i) for i in wrong.nonzero()[0])
            return (f"{where} differs in {int(wrong.sum())} of {e.numel()} entries "
                    f"(first at index {idx})")
        return None
    g64, e64 = g.double(), e.double()
    finite_expected = torch.isfinite(e64)
    bad = ~torch.isfinite(g64) & finite_expected
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        return (f"{where} contains {int(bad.sum())} NaN/inf value(s) (first at index {idx}); "
                f"look for a log of 0, a division by 0 or an overflowing exp")
    err = (g64 - e64).abs().where(finite_expected, torch.zeros_like(g64))
    tol = atol + rtol * e64.abs().where(finite_expected, torch.zeros_like(e64))
    if (err > tol).any() and e.dim() == 0:
        return (f"{where} is off by {err.item():.3g} (tolerance atol={atol:g} + "
                f"rtol={rtol:g}*|expected|)")
    if (err > tol).any():
        worst = int((err - tol).argmax())
        idx = tuple(int(i) for i in np.unravel_index(worst, tuple(e.shape)))
        return (f"{where} is off: max |error| = {err.max().item():.3g} "
                f"(at index {idx}; tolerance atol={atol:g} + rtol={rtol:g}*|expected|)")
    return None


class ExerciseCheck:
    """A callable check for one exercise; build it with :func:`make_check`."""

    def __init__(self, exercise: str, title: str, reference: Callable,
                 cases: Callable[[], Sequence[Case]], *, atol: float = 1e-5,
                 rtol: float = 1e-4, mistakes: Sequence[tuple[Callable, str]] = (),
                 compare: Callable | None = None, printer: Callable = print):
        self.exercise = exercise
        self.title = title
        self.reference = reference
        self.cases = cases
        self.atol = atol
        self.rtol = rtol
        self.mistakes = tuple(mistakes)
        self.compare = compare
        self.printer = printer
        self.__doc__ = (f"Check Exercise {exercise} ({title}): pass your function, get back "
                        f"your function if it is right or the reference if it is not done yet.")

    @property
    def name(self) -> str:
        return f"Exercise {self.exercise} ({self.title})"

    def _diff(self, got, expected, case) -> str | None:
        if self.compare is not None:
            return self.compare(got, expected, case)
        return compare_outputs(got, expected, atol=self.atol, rtol=self.rtol)

    def _typical_mistake(self, got, case) -> str:
        for wrong_fn, message in self.mistakes:
            args, kwargs = case.inputs()
            try:
                wrong = wrong_fn(*args, **kwargs)
            except Exception:  # a mistake that cannot run on this case cannot match it
                continue
            if compare_outputs(got, wrong, atol=self.atol, rtol=self.rtol) is None:
                return f" This looks like a typical mistake: {message}"
        return ""

    def __call__(self, student_fn: Callable) -> Callable:
        if not callable(student_fn):
            raise TypeError(
                f"{self.name}: pass the function itself, e.g. check(my_function), not "
                f"{_describe_type(student_fn)} (no parentheses after the function name)."
            )
        cases = list(self.cases())
        for number, case in enumerate(cases, start=1):
            label = f"case {number} of {len(cases)} ('{case.description}')"
            args, kwargs = case.inputs()
            expected = self.reference(*args, **kwargs)
            args, kwargs = case.inputs()
            try:
                got = student_fn(*args, **kwargs)
            except NotImplementedError:
                self.printer(
                    f"{self.name}: not done yet, so the reference solution is used for now "
                    f"and the rest of the notebook still runs. Fill in the function, then "
                    f"run its cell and this one again."
                )
                return self.reference
            except Exception as err:
                raise AssertionError(
                    f"{self.name} is not right yet: on {label} your function raised "
                    f"{type(err).__name__}: {err}. Read the traceback above this message to "
                    f"find the line."
                ) from err
            problem = self._diff(got, expected, case)
            if problem:
                raise AssertionError(
                    f"{self.name} is not right yet: on {label}, {problem}."
                    f"{self._typical_mistake(got, case)} Fix the function, run its cell, "
                    f"then this one again."
                )
        self.printer(f"{self.name}: correct on all {len(cases)} cases. Well done!")
        return student_fn


def make_check(exercise: str, title: str, reference: Callable,
               cases: Callable[[], Sequence[Case]], *, atol: float = 1e-5, rtol: float = 1e-4,
               mistakes: Sequence[tuple[Callable, str]] = (),
               compare: Callable | None = None) -> ExerciseCheck:
    """Build the check for one exercise.

    Args:
        exercise: its number as the notebook shows it, e.g. ``"4.2"``.
        title: a few words naming it, e.g. ``"NT-Xent, vectorised"``.
        reference: the package's implementation, called with the same arguments.
        cases: a function returning the list of :class:`Case` to run (called at every check,
            so the inputs are made fresh and deterministically).
        atol, rtol: tolerance of the default comparison.
        mistakes: ``(wrong_fn, message)`` pairs: typical wrong implementations; when the
            student's output matches one, the error message names that mistake.
        compare: ``compare(got, expected, case) -> None | str`` replacing the default
            comparison, for exercises whose output is random (check properties instead).
    """
    return ExerciseCheck(exercise, title, reference, cases, atol=atol, rtol=rtol,
                         mistakes=mistakes, compare=compare)
