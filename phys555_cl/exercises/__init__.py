"""Exercise checks for the course notebooks.

In a notebook: ``from phys555_cl import exercises as ex`` then, right after an exercise,
``my_function = ex.check_<name>(my_function)``. See :mod:`phys555_cl.exercises.core` for how
a check behaves and how to add one.
"""

from .core import Case, ExerciseCheck, compare_outputs, make_check
from .nb00 import check_flux_to_magnitude

__all__ = [
    "Case",
    "ExerciseCheck",
    "compare_outputs",
    "make_check",
    "check_flux_to_magnitude",
]
