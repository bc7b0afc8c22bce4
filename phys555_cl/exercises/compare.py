"""Comparing a student's result with the reference, in words that never give the answer away.

- :class:`Returns`: the type contract of an exercise (what the next cells rely on);
- :func:`compare_outputs`: what is wrong with a result (shape, dtype, NaN, a relative error, a
  flipped sign or a constant factor), never printing an expected value;
- :func:`same_values`: whether two results agree, to recognise a typical mistake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

__all__ = ["ContractError", "Returns", "compare_outputs", "same_values"]


def _describe_type(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a torch.Tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape}"
    if x is None:
        return "None (is a `return` missing?)"
    return f"a {type(x).__name__}"



# --------------------------------------------------------------------------------------------
# the type contract
# --------------------------------------------------------------------------------------------


class ContractError(Exception):
    """Raised by a check's ``run`` when the student's function breaks the type contract
    somewhere the check cannot see from the outside (e.g. inside a training scenario)."""


@dataclass(frozen=True)
class Returns:
    """What an exercise's function must return, because the next cells rely on it.

    Build it with :meth:`tensor` or :meth:`python_float`; :meth:`problem` says what is wrong
    with a result (and what to change), :meth:`describe` says it in words for a docstring.
    """

    kind: str  # "tensor" or "float"
    dtype: object = None  # None, a torch.dtype, or "input" (the dtype of the first argument)
    scalar: bool = False
    grad: bool = False  # must carry a gradient when an input requires one
    why: str = ""  # what the notebook does with the result
    count: int = 0  # for "numbers": how many

    @classmethod
    def tensor(cls, *, dtype=None, scalar: bool = False, grad: bool = False,
               why: str = "") -> Returns:
        return cls("tensor", dtype, scalar, grad, why)

    @classmethod
    def python_float(cls, *, why: str = "") -> Returns:
        return cls("float", why=why)

    @classmethod
    def number(cls, *, why: str = "") -> Returns:
        """One number: a Python int or float, or a tensor holding one value."""
        return cls("number", why=why)

    @classmethod
    def numbers(cls, count: int, *, why: str = "") -> Returns:
        """A tuple of ``count`` numbers, each as :meth:`number` accepts."""
        return cls("numbers", why=why, count=count)

    def describe(self) -> str:
        if self.kind == "numbers":
            return f"a tuple of {self.count} numbers"
        if self.kind == "float":
            return "a Python float"
        if self.kind == "number":
            return "one number (a Python float, or a tensor with one value)"
        words = "a scalar torch.Tensor (shape ())" if self.scalar else "a torch.Tensor"
        if self.dtype == "input":
            words += " of the input's dtype"
        elif self.dtype is not None:
            words += f" of dtype {self.dtype}"
        if self.grad:
            words += " that carries a gradient"
        return words

    def problem(self, got, args: tuple = (), kwargs: dict | None = None) -> str | None:
        """``None`` when ``got`` keeps the contract, else what is wrong and what to do."""
        why = f" ({self.why})" if self.why else ""
        if self.kind == "float":
            if isinstance(got, float):
                return None
            fix = (" Return loss.item(), not the tensor itself"
                   if isinstance(got, torch.Tensor) else "")
            return (f"your function returns {_describe_type(got)}, but it must return a Python "
                    f"float{why}.{fix}")
        if self.kind == "numbers":
            if (isinstance(got, (tuple, list)) and len(got) == self.count
                    and all(Returns.number().problem(x) is None for x in got)):
                return None
            return (f"your function returns {_describe_type(got)}, but it must return "
                    f"{self.describe()}{why}, e.g. (mean, low, high)")
        if self.kind == "number":
            if isinstance(got, (int, float, np.integer, np.floating)) and not isinstance(
                    got, bool):
                return None
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                return None
            if isinstance(got, np.ndarray) and got.size == 1:
                return None
            return (f"your function returns {_describe_type(got)}, but it must return "
                    f"{self.describe()}{why}")
        if not isinstance(got, torch.Tensor):
            fix = ""
            if isinstance(got, np.ndarray):
                fix = " Use torch functions all the way (no .numpy() and no numpy functions)"
            elif isinstance(got, (float, int)):
                fix = " Do not call .item(), float() or math functions on the result"
            return (f"your function returns {_describe_type(got)}, but it must return "
                    f"{self.describe()}{why}.{fix}")
        if self.scalar and got.dim() != 0:
            return (f"your function returns a tensor of shape {tuple(got.shape)}, but it must "
                    f"return a single number, a tensor of shape (){why}. Reduce over the batch "
                    f"with .mean() (or whatever the exercise asks)")
        dtype = self.dtype
        if dtype == "input":
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            dtype = first.dtype if first is not None else None
        if dtype is not None and got.dtype != dtype:
            if dtype in (torch.int64, torch.int32):
                fix = " Integer labels come from .argmax() or .long(), not from a mean"
            else:
                fix = " Do not convert with .float() or .double(); compute in the input's dtype"
            return (f"the result has dtype {got.dtype}, but it must have dtype {dtype}{why}."
                    f"{fix}")
        needs_grad = any(isinstance(a, torch.Tensor) and a.requires_grad
                         for a in tuple(args) + tuple((kwargs or {}).values()))
        if self.grad and needs_grad and not got.requires_grad:
            return ("the result carries no gradient, but the inputs of this case require one: "
                    "keep every step in torch (no .item(), .detach(), .numpy(), torch.tensor(...) "
                    "or torch.no_grad()) so that backward() can train through it")
        return None


# --------------------------------------------------------------------------------------------
# comparing values (the messages never print an expected value)
# --------------------------------------------------------------------------------------------

_FACTORS = sorted({Fraction(n) for n in range(2, 65)} | {Fraction(1, n) for n in range(2, 65)}
                  | {Fraction(5, 2), Fraction(2, 5), Fraction(3, 2), Fraction(2, 3)})


def _simple_factor(ratio: float, rtol: float = 1e-4) -> str | None:
    """``"2"``, ``"1/2"``, ``"-5/2"``... when ``ratio`` is one of the usual slips' factors."""
    if not math.isfinite(ratio) or ratio == 0:
        return None
    sign = "-" if ratio < 0 else ""
    for f in _FACTORS:
        if abs(abs(ratio) - float(f)) <= rtol * abs(ratio):
            return f"{sign}{f}"
    return None


def _constant_ratio(g: torch.Tensor, e: torch.Tensor, rtol: float) -> float | None:
    """The common ratio g / e when every entry has it (and e has no zeros), else ``None``."""
    if e.numel() == 0 or (e == 0).any():
        return None
    r = g / e
    r0 = float(r.flatten()[0])
    if r0 == 0 or not math.isfinite(r0):
        return None
    return r0 if bool(((r - r0).abs() <= 10 * rtol * abs(r0)).all()) else None


def _ratio_message(ratio: float | None, where: str, rtol: float) -> str | None:
    if ratio is None:
        return None
    if abs(ratio + 1) <= 10 * rtol:
        return f"{where} has the wrong sign (it is minus what it should be)"
    factor = _simple_factor(ratio, rtol=10 * rtol)
    if factor is not None:
        return (f"{where} is off by a constant factor of {factor} (it is {factor} times what it "
                f"should be)")
    return None


def _percent(x: float) -> str:
    v = 100 * x
    return f"{v:.0f}%" if v >= 10 else f"{v:.2g}%"


def compare_outputs(got, expected, *, atol: float = 1e-5, rtol: float = 1e-4,
                    where: str = "the result") -> str | None:
    """Compare a student's output with the expected one.

    Returns ``None`` when they agree, else a sentence saying what is wrong (shape, dtype, NaNs,
    the relative error and the tolerance, a flipped sign or a constant factor) that never
    reveals an expected value. Tensors, numpy arrays, Python numbers, and tuples/lists/dicts of
    those are supported.
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
        return _compare_numbers(float(got), float(expected), atol, rtol, where)
    if got != expected:
        return f"{where} is {got!r}, which is not right"
    return None


def _compare_numbers(got: float, expected: float, atol, rtol, where) -> str | None:
    if not math.isfinite(got):
        return (f"{where} is {got}, not a finite number; look for a log of 0, a division by 0 "
                f"or an overflowing exp")
    err = abs(got - expected)
    tol = atol + rtol * abs(expected)
    if err <= tol:
        return None
    if expected == 0:
        return f"{where} is off: it should be 0 (within {tol:.1g})"
    ratio = _ratio_message(got / expected if got != 0 else None, where, rtol)
    if ratio:
        return ratio
    return (f"{where} is off by {_percent(err / abs(expected))} of the expected value "
            f"(tolerance {_percent(tol / abs(expected))})")


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
    if e.dim() == 0:
        if not torch.isfinite(e):
            return None
        return _compare_numbers(float(g), float(e), atol, rtol, where)
    g64, e64 = g.double(), e.double()
    finite_expected = torch.isfinite(e64)
    bad = ~torch.isfinite(g64) & finite_expected
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        return (f"{where} contains {int(bad.sum())} NaN/inf value(s) (first at index {idx}); "
                f"look for a log of 0, a division by 0 or an overflowing exp")
    zero = torch.zeros_like(g64)
    err = (g64 - e64).abs().where(finite_expected, zero)
    tol = atol + rtol * e64.abs().where(finite_expected, zero)
    if not (err > tol).any():
        return None
    ratio = _ratio_message(_constant_ratio(g64[finite_expected], e64[finite_expected], rtol),
                           where, rtol)
    if ratio:
        return ratio
    worst = int((err - tol).argmax())
    idx = tuple(int(i) for i in np.unravel_index(worst, tuple(e.shape)))
    scale = float(e64.abs().where(finite_expected, zero).max())
    if scale == 0:
        return f"{where} is off (at index {idx}): every entry should be 0"
    n_off = int((err > tol).sum())
    return (f"{where} is off in {n_off} of {e.numel()} entries: the largest error (at index "
            f"{idx}) is {_percent(float(err.max()) / scale)} of the largest expected magnitude "
            f"(tolerance atol={atol:g} + rtol={rtol:g}*|expected|)")


def _as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, (bool, np.bool_)):
        return torch.tensor(bool(x))
    if isinstance(x, (int, float, np.number)):
        return torch.tensor(float(x), dtype=torch.float64)
    return None


def _all(results: list) -> bool | None:
    if False in results:
        return False
    return None if None in results else True


def same_values(got, other, *, atol: float = 1e-5, rtol: float = 1e-4) -> bool | None:
    """Do ``got``'s values match ``other``'s (types, dtypes and gradients aside)?

    ``True`` or ``False``; ``None`` when ``other`` is not defined (it contains NaN/inf), so no
    comparison with it means anything. This is how a typical mistake is recognised.
    """
    if isinstance(other, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(other):
            return False
        return _all([same_values(g, o, atol=atol, rtol=rtol) for g, o in zip(got, other)])
    if isinstance(other, dict):
        if not isinstance(got, dict) or set(got) != set(other):
            return False
        return _all([same_values(got[k], other[k], atol=atol, rtol=rtol) for k in other])
    o, g = _as_tensor(other), _as_tensor(got)
    if o is None or g is None:
        try:
            return bool(got == other)
        except Exception:
            return False
    if o.is_floating_point() and not torch.isfinite(o).all():
        return None
    if g.shape != o.shape:
        if g.numel() == o.numel() == 1:
            g, o = g.reshape(()), o.reshape(())
        else:
            return False
    if g.is_floating_point() or o.is_floating_point():
        g64, o64 = g.double(), o.double()
        return bool(torch.isfinite(g64).all()) and bool(
            torch.allclose(g64, o64, atol=atol, rtol=rtol))
    return bool(torch.equal(g, o))
