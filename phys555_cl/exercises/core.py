"""The mechanism behind every exercise check in the course notebooks.

A check runs the student's function on a few fixed cases and compares it with the package's
reference implementation. It has exactly three outcomes:

- **not done yet** (the function still raises ``NotImplementedError``): one friendly line, and
  the *reference* is handed back so the rest of the notebook still runs;
- **wrong** (a result of the wrong type, shape, dtype or value, or the function raises): a
  :class:`CheckFailed` (an ``AssertionError``) that names the case and says what is wrong and
  what to do, never printing an expected value;
- **right**: one line saying so, and the *student's* function is handed back.

Every outcome is also recorded in :data:`RESULTS` (see :func:`results`), so a grading tool can
read it without parsing printed text.

**Hints.** The message of an exercise's ``raise NotImplementedError`` is its first hint: the idea,
in words. :func:`hint` (``ex.hint("1.1")`` in a notebook) prints the next level each time it is
called: 1 the idea (the same text), 2 the approach (the steps, naming the tools), 3 a code-level
hint (close to the solution, still to be written). How many levels a student has seen is
recorded with the check's result (``hints_used``). The texts are declared with the check
(``make_check(..., hints=[...])``, see there for why).

A check is declared in a few lines::

    def _cases():
        g = torch.Generator().manual_seed(0)
        return [Case("5 points in 3-D", torch.randn(5, 3, generator=g)),
                Case("one point", torch.randn(1, 3, generator=g))]

    check_my_norm = make_check(
        "1.1", "row norms", reference=my_reference, cases=_cases,
        returns=Returns.tensor(dtype="input"),
        mistakes=[(lambda x: (x**2).sum(1), "the square root is missing")],
        hints=["the length of a vector: Pythagoras over its components",
               "square every component, add them up along each row, take the square root",
               "x.pow(2) squares, .sum(dim=1) adds along the rows, .sqrt() finishes"])

and in the notebook, in the exercise's cell: ``my_norm = ex.check_my_norm(my_norm)``.

What makes the feedback trustworthy:

- ``returns`` is the type contract: what the next cells rely on (a tensor of the input's dtype,
  a loss that carries a gradient, a Python float...). It is checked first, and its message says
  what to change.
- A typical mistake is named only when it *is* that mistake: its output matches the student's on
  every case where both are defined (a mistake that raises, or gives NaN/inf, on a case is not
  defined there), on at least one case where the student differs from the reference, and no
  other listed mistake matches as well. A result whose values are right (a gradient, dtype or
  type problem) never gets a value hint.
- Numbers are reported as relative errors; a flipped sign or a simple constant factor is named
  as such.
- ``builds_on`` names the earlier exercises a function calls by name (e.g. 7.2 calls
  ``info_nce_loss`` of 7.1): the check runs the student's function with the *reference* of the
  earlier exercise, and says so when the student's earlier exercise is not right yet.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from phys555_cl.project import CHECK_RESULTS_ENV

from .compare import (
    ContractError,
    Returns,
    _describe_type,
    compare_outputs,
    same_values,
)

__all__ = ["Case", "CheckFailed", "ContractError", "ExerciseCheck", "Returns", "RESULTS",
           "compare_outputs", "hint", "make_check", "register", "results", "same_values"]

#: Environment variable naming a JSON file that every check rewrites with :func:`results`.
RESULTS_FILE_ENV = CHECK_RESULTS_ENV


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


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (or its own ! or ?)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _join(*parts: str) -> str:
    return " ".join(_sentence(p) for p in parts if p and p.strip())


# --------------------------------------------------------------------------------------------
# outcomes: the exception a failed check raises, and the record a grader reads
# --------------------------------------------------------------------------------------------


def _library_dirs() -> tuple[str, ...]:
    dirs = {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}  # phys555_cl itself
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.abspath(path))
    return tuple(sorted(dirs))


_LIBRARY_DIRS = _library_dirs()


def _is_students(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    if name.startswith("<frozen") or name == "<string>":
        return False
    path = os.path.abspath(name)
    return not any(path == d or path.startswith(d + os.sep) for d in _LIBRARY_DIRS)


class CheckFailed(AssertionError):
    """A failed exercise check. In Jupyter it shows its message first, then only the frames of
    the student's own code (IPython calls :meth:`_render_traceback_`); in plain Python the
    traceback stays complete."""

    def student_frames(self) -> list[traceback.FrameSummary]:
        frames = list(traceback.extract_tb(self.__traceback__))
        if self.__cause__ is not None:
            frames += list(traceback.extract_tb(self.__cause__.__traceback__))
        return [f for f in frames if _is_students(f)]

    def _render_traceback_(self) -> list[str]:
        lines = [f"AssertionError: {self}"]
        frames = self.student_frames()
        if frames:
            lines += ["", "Your code (most recent call last):"]
            lines += "".join(traceback.format_list(frames)).rstrip("\n").splitlines()
        return lines


@dataclass
class CheckResult:
    """The outcome of the last run of one exercise's check."""

    exercise: str
    title: str
    status: str  # "right", "wrong" or "not done"
    message: str
    hints_used: int = 0  # how many levels of ex.hint the student has seen (see hint)


#: The last outcome of every exercise checked in this Python process, by exercise number.
RESULTS: dict[str, CheckResult] = {}

#: How many hint levels :func:`hint` has shown in this Python process, by exercise number.
HINTS_USED: dict[str, int] = {}


def results() -> dict[str, dict]:
    """The last outcome of every check run so far, ``{"7.1": {"exercise": "7.1", "title": ...,
    "status": "right" | "wrong" | "not done", "message": ..., "hints_used": 0}}``: what a
    grading tool reads (e.g. in a last cell, ``json.dumps(ex.results())``). ``hints_used`` is
    the number of hint levels :func:`hint` has shown for that exercise so far (also when asked
    after the check ran). With ``PHYS555_CHECK_RESULTS=path`` every check and every hint also
    rewrites that JSON file."""
    return {k: asdict(v) for k, v in RESULTS.items()}


def _record(result: CheckResult) -> None:
    result.hints_used = HINTS_USED.get(result.exercise, 0)
    RESULTS[result.exercise] = result
    _write_results()


def _write_results() -> None:
    path = os.environ.get(RESULTS_FILE_ENV)
    if path:
        try:
            with open(path, "w") as f:
                json.dump(results(), f, indent=1)
        except OSError as err:
            print(f"(could not write the check results to {path}: {err})", file=sys.stderr)


@dataclass
class Outcome:
    """What :meth:`ExerciseCheck.evaluate` found; nothing printed or raised yet."""

    status: str  # "right", "wrong" or "not done"
    what: str  # what was found
    action: str = ""  # what to do next
    error: BaseException | None = None  # what the student's function raised, if it did
    earlier_not_right: bool = False

    @property
    def message(self) -> str:
        return _join(self.what, self.action)


@dataclass(frozen=True)
class BuildsOn:
    """An earlier exercise whose function the student's function calls by its global name."""

    name: str  # e.g. "info_nce_loss"
    check: Callable[[], ExerciseCheck]  # returns the earlier exercise's check


# --------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------

FIX = "Fix the function and run this cell again"


def _call(fn, case: Case):
    args, kwargs = case.inputs()
    return fn(*args, **kwargs)


class ExerciseCheck:
    """A callable check for one exercise; build it with :func:`make_check`."""

    def __init__(self, exercise: str, title: str, reference: Callable,
                 cases: Callable[[], Sequence[Case]], *, atol: float = 1e-5,
                 rtol: float = 1e-4, mistakes: Sequence[tuple[Callable, str]] = (),
                 compare: Callable | None = None, returns: Returns | None = None,
                 same: Callable | None = None, run: Callable = _call,
                 builds_on: Sequence[BuildsOn] = (), also: Callable | None = None,
                 hints: Sequence[str] = (), printer: Callable = print):
        self.exercise = exercise
        self.title = title
        self.reference = reference
        self.cases = cases
        self.atol = atol
        self.rtol = rtol
        self.mistakes = tuple(mistakes)
        self.compare = compare
        self.returns = returns
        self.same = same
        self.run = run
        self.builds_on = tuple(builds_on)
        self.also = also
        self.hints = _hint_texts(exercise, hints)
        self.printer = printer
        self.__doc__ = (f"Check Exercise {exercise} ({title}): pass your function, get back "
                        f"your function if it is right or the reference if it is not done yet."
                        + (f" It must return {returns.describe()}." if returns else ""))

    @property
    def name(self) -> str:
        return f"Exercise {self.exercise} ({self.title})"

    # ---------------------------------------------------------------- comparisons

    def _diff(self, got, expected, case) -> str | None:
        if self.compare is not None:
            return self.compare(got, expected, case)
        return compare_outputs(got, expected, atol=self.atol, rtol=self.rtol)

    def matches(self, got, other, case) -> bool | None:
        """Does ``got`` give the same values as ``other`` on ``case``? ``None``: undefined."""
        if self.same is not None:
            return self.same(got, other, case)
        return same_values(got, other, atol=max(self.atol, 1e-5), rtol=max(self.rtol, 1e-4))

    def outputs(self, fn, cases) -> list:
        """``fn``'s output on every case, or the exception it raised there."""
        out = []
        for case in cases:
            try:
                out.append(self.run(fn, case))
            except Exception as err:  # noqa: BLE001 - a mistake may fail on a case
                out.append(err)
        return out

    def _typical_mistake(self, got: list, expected: list, cases) -> str:
        """The message of the one listed mistake the student's outputs match, or ''."""
        found = []
        for wrong_fn, message in self.mistakes:
            evidence, agrees = False, True
            for g, e, w, case in zip(got, expected, self.outputs(wrong_fn, cases), cases):
                if isinstance(g, BaseException) or isinstance(w, BaseException):
                    continue
                same = self.matches(g, w, case)
                if same is None:
                    continue
                if not same:
                    agrees = False
                    break
                if self.matches(g, e, case) is False:
                    evidence = True
            if agrees and evidence:
                found.append(message)
        return found[0] if len(found) == 1 else ""

    # ---------------------------------------------------------------- running

    def _patch_earlier(self, student_fn):
        """Swap the earlier exercises' functions for their references in the student's
        globals; returns [(dependency, the student's function)] for what was swapped."""
        namespace = getattr(student_fn, "__globals__", None)
        swapped = []
        for dep in self.builds_on:
            earlier = dep.check()
            current = namespace.get(dep.name) if namespace is not None else None
            if current is not None and current is not earlier.reference:
                swapped.append((dep, earlier, namespace[dep.name]))
                namespace[dep.name] = earlier.reference
        return namespace, swapped

    def evaluate(self, student_fn: Callable) -> Outcome:
        """Run the check without printing, raising or recording anything."""
        namespace, swapped = self._patch_earlier(student_fn)
        try:
            outcome = self._evaluate(student_fn)
        finally:
            for dep, _, original in swapped:
                namespace[dep.name] = original
        if outcome.status == "not done":
            return outcome
        for dep, earlier, original in swapped:
            if callable(original) and earlier.evaluate(original).status == "right":
                continue
            note = (f"Exercise {earlier.exercise} is not right yet: {self.exercise} was checked "
                    f"with the reference `{dep.name}`; fix {earlier.exercise} first")
            if outcome.status == "right":
                outcome.what = _join(f"{self.name} is right with the reference `{dep.name}`",
                                     note)
                outcome.action = f"Then run {earlier.exercise}'s cell and this cell again"
            else:
                outcome.what = _join(outcome.what, note)
                outcome.action = (f"Fix both, run {earlier.exercise}'s cell, then run this cell "
                                  f"again")
            outcome.earlier_not_right = True
        return outcome

    def _evaluate(self, student_fn: Callable) -> Outcome:
        cases = list(self.cases())
        expected = [self.run(self.reference, case) for case in cases]
        got, first = [], None
        for number, (case, exp) in enumerate(zip(cases, expected), start=1):
            label = f"case {number} of {len(cases)} ('{case.description}')"
            try:
                args, kwargs = case.inputs()
                out = self.run(student_fn, case)
            except NotImplementedError:
                return Outcome(
                    "not done", f"{self.name}: not done yet, so the reference solution is used "
                    f"for now and the rest of the notebook still runs",
                    "Fill in the function, then run this cell again")
            except ContractError as err:
                return Outcome("wrong", f"{self.name} is not right yet: on {label}, {err}", FIX)
            except Exception as err:  # noqa: BLE001 - reported to the student
                if first is not None:
                    break
                return Outcome("wrong", _join(
                    f"{self.name} is not right yet: on {label}, your function raised "
                    f"{type(err).__name__}: {err}",
                    "The lines of your code that led to it are listed with this message"),
                    FIX, error=err)
            got.append(out)
            if first is None:
                contract = self.returns.problem(out, args, kwargs) if self.returns else None
                if contract:
                    return Outcome("wrong", f"{self.name} is not right yet: on {label}, {contract}",
                                   FIX)
                problem = self._diff(out, exp, case)
                if problem:
                    first = (number - 1, label, problem)
        if first is None:
            problem = self.also(student_fn) if self.also else None
            if problem:
                return Outcome("wrong", f"{self.name} is not right yet: {problem}", FIX)
            return Outcome("right", f"{self.name}: correct on all {len(cases)} cases. Well done!")
        index, label, problem = first
        hint = ""
        if self.matches(got[index], expected[index], cases[index]) is False:  # values differ
            hint = self._typical_mistake(got, expected[:len(got)], cases[:len(got)])
        if hint and hint.rstrip(".") in problem:
            hint = ""
        return Outcome("wrong", _join(
            f"{self.name} is not right yet: on {label}, {problem}",
            f"This looks like a typical mistake: {hint}" if hint else ""), FIX)

    def __call__(self, student_fn: Callable) -> Callable:
        if not callable(student_fn):
            raise TypeError(
                f"{self.name}: pass the function itself, e.g. check(my_function), not "
                f"{_describe_type(student_fn)} (no parentheses after the function name)."
            )
        outcome = self.evaluate(student_fn)
        _record(CheckResult(self.exercise, self.title, outcome.status, outcome.message))
        if outcome.status == "not done":
            self.printer(outcome.message)
            return self.reference
        if outcome.status == "right" and not outcome.earlier_not_right:
            self.printer(outcome.message)
            return student_fn
        failure = CheckFailed(outcome.message)
        if outcome.error is not None:
            raise failure from outcome.error
        raise failure


def make_check(exercise: str, title: str, reference: Callable,
               cases: Callable[[], Sequence[Case]], *, atol: float = 1e-5, rtol: float = 1e-4,
               mistakes: Sequence[tuple[Callable, str]] = (), compare: Callable | None = None,
               returns: Returns | None = None, same: Callable | None = None,
               run: Callable = _call, builds_on: Sequence[BuildsOn] = (),
               also: Callable | None = None, hints: Sequence[str] = ()) -> ExerciseCheck:
    """Build the check for one exercise.

    Args:
        exercise: its number as the notebook shows it, e.g. ``"4.2"``.
        title: a few words naming it, e.g. ``"NT-Xent, vectorised"``.
        reference: the package's implementation, called with the same arguments.
        cases: a function returning the list of :class:`Case` to run (called at every check,
            so the inputs are made fresh and deterministically).
        atol, rtol: tolerance of the default comparison.
        mistakes: ``(wrong_fn, message)`` pairs: typical wrong implementations. The message is
            given when the student's outputs match that one mistake on every case where both
            are defined (see :meth:`ExerciseCheck.matches`).
        compare: ``compare(got, expected, case) -> None | str`` replacing the default
            comparison, for exercises whose output is random (check properties instead).
        returns: the type contract (:class:`Returns`), checked before the values.
        same: ``same(got, wrong, case) -> bool | None`` replacing :func:`same_values` to
            recognise a mistake (e.g. two thresholds that classify the same pairs are the same).
        run: ``run(fn, case) -> output``: how a function is run on a case (default
            ``fn(*case.args, **case.kwargs)``), e.g. inside a small training scenario.
        builds_on: earlier exercises called by name (:class:`BuildsOn`), replaced by their
            references while checking.
        also: ``also(student_fn) -> None | str``: one more test once every case is right.
        hints: the texts :func:`hint` shows, one per level, most general first: the idea in
            words (exactly the ``### HINT:`` line of the notebook source, which the student sees
            in the ``raise NotImplementedError`` line: no code), the approach (the steps in
            words, naming the tools), then a code-level hint that still leaves the function to
            be written.

    The hints sit here, next to the typical mistakes, rather than in a file of their own: the
    same person writes both for one exercise, and must see them side by side to keep the
    levels of disclosure in order (the first hint gives away the least; no mistake message
    gives away more than the last hint). The first hint is also the ``### HINT:`` line of the
    notebook source, the one text kept in two places; ``tests/test_exercises_hints.py`` checks
    that the two are identical.
    """
    return ExerciseCheck(exercise, title, reference, cases, atol=atol, rtol=rtol,
                         mistakes=mistakes, compare=compare, returns=returns, same=same, run=run,
                         builds_on=builds_on, also=also, hints=hints)


# --------------------------------------------------------------------------------------------
# hints on request: ex.hint("1.1")
# --------------------------------------------------------------------------------------------

#: The level names :func:`hint` prints, for an exercise with three hints.
HINT_LEVELS = ("the idea", "the approach", "close to the code")

#: The course's checks by exercise number, as :func:`register` received them.
CHECKS: dict[str, ExerciseCheck] = {}


def _hint_texts(exercise: str, hints: Sequence[str]) -> tuple[str, ...]:
    if isinstance(hints, str):
        raise TypeError(f"Exercise {exercise}: hints is a list of texts, one per level, not "
                        f"one string.")
    texts = tuple(hints)
    for level, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Exercise {exercise}: hint {level} is empty or not a text.")
    return tuple(text.strip() for text in texts)


def register(check: ExerciseCheck) -> ExerciseCheck:
    """Make ``check``'s hints available to :func:`hint` under its exercise number (the package
    registers every ``check_*`` of ``nbNN.py``); returns the check."""
    CHECKS[check.exercise] = check
    return check


def _exercise_key(exercise) -> str:
    """``"1.1"`` from ``"1.1"``, ``1.1`` or ``"Exercise 1.1"``."""
    text = str(exercise).strip()
    if text.lower().startswith("exercise"):
        text = text[len("exercise"):].strip()
    return text


def _sort_key(number: str):
    return tuple(int(part) if part.isdigit() else part for part in number.split("."))


def hint(exercise, *, printer: Callable = print) -> None:
    """Print the next hint for ``exercise`` (``"1.1"``): each call goes one level deeper.

    Level 1 is the idea (the same words as the exercise's ``raise NotImplementedError``), level 2
    the approach (the steps, naming the tools), level 3 a code-level hint; after the last one it
    says there are no more. Every level shown is counted in ``HINTS_USED`` and in the
    exercise's check result (``results()[exercise]["hints_used"]``), which is updated even when
    the check ran before the hint was asked. Restarting the kernel starts again at level 1.

    Raises ``ValueError`` listing the valid numbers when ``exercise`` is not one of the course's.
    """
    number = _exercise_key(exercise)
    check = CHECKS.get(number)
    if check is None:
        valid = ", ".join(sorted(CHECKS, key=_sort_key)) or "none"
        raise ValueError(f"There is no exercise {exercise!r} with hints. The exercises are: "
                         f"{valid} (for example ex.hint(\"1.1\")).")
    texts = check.hints
    if not texts:
        printer(f"Exercise {number} ({check.title}) has no hints yet: the text above the "
                f"exercise and the check's message are all there is.")
        return
    seen = HINTS_USED.get(number, 0)
    if seen >= len(texts):
        printer(f"Exercise {number}: no more hints, you have seen all {len(texts)}. Compare "
                f"your function, step by step, with the lecture's formula in the text above "
                f"the exercise, and read what the check says about the first case it fails.")
        return
    level = seen + 1
    names = HINT_LEVELS if len(texts) == len(HINT_LEVELS) else ()
    label = f" ({names[level - 1]})" if names else ""
    more = (f" (ex.hint(\"{number}\") again for hint {level + 1}.)" if level < len(texts)
            else " (That was the last hint.)")
    printer(f"Exercise {number}, hint {level} of {len(texts)}{label}: {_sentence(texts[level - 1])}"
            f"{more}")
    HINTS_USED[number] = level
    if number in RESULTS:
        RESULTS[number].hints_used = level
        _write_results()
