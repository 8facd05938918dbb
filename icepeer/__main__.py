"""``python -m icepeer`` is the ``icepeer`` command."""

import sys

from .cli import main

sys.exit(main())
