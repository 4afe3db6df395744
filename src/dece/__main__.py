"""`python -m dece` is the `dece` command."""

import sys

from dece.cli import main

sys.exit(main())
