"""`python -m bench ...` is the `ganbench` command."""

import sys

from bench.main import main

sys.exit(main())
