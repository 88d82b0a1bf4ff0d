#!/usr/bin/env python
"""ganbench: which framework trains this GAN fastest, and do they compute the same thing?

    python run_bench.py --backends torch,tf,jax --algo wgan_gp
    python run_bench.py report DIR

The same as the installed `ganbench` command (flags alone mean `ganbench run`).
"""

import sys

from bench.main import main

if __name__ == "__main__":
    sys.exit(main(help_is_run=True))
