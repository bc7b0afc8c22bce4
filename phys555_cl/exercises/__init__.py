"""Exercise checks for the course notebooks.

In a notebook: ``from phys555_cl import exercises as ex`` then, right after an exercise,
``my_function = ex.check_<name>(my_function)``; stuck, ``ex.hint("N.M")`` prints a deeper hint
each time it is called. See :mod:`phys555_cl.exercises.core` for how a check behaves and how to
add one.

The checks of notebook NN live in ``nbNN.py``, each with its hints; every ``check_*`` defined
there is available here and its hints through :func:`hint`, so adding a check never means
editing this file.
"""

import importlib
import pkgutil

from .core import (
    BuildsOn,
    Case,
    CheckFailed,
    ExerciseCheck,
    Returns,
    compare_outputs,
    hint,
    make_check,
    register,
    results,
)

__all__ = ["BuildsOn", "Case", "CheckFailed", "ExerciseCheck", "Returns", "compare_outputs",
           "hint", "make_check", "results"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module.startswith("nb"):
        _checks = importlib.import_module(f"{__name__}.{_module}")
        for _name in dir(_checks):
            if _name.startswith("check_"):
                globals()[_name] = register(getattr(_checks, _name))
                __all__.append(_name)
