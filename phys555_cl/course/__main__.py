"""``python -m phys555_cl.course ...``: the command line (see :mod:`phys555_cl.course.cli`)."""

import sys

from phys555_cl.course.cli import main

sys.exit(main())
