#!/usr/bin/env python
"""ganbench: which framework trains this GAN fastest, and do they compute the same thing?

    python run_bench.py --backends torch,tf,jax --algo wgan_gp
"""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
