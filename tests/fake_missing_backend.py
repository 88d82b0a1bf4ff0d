"""A backend whose framework import fails inside the worker, as a broken install would."""

import not_a_real_framework_ganbench  # noqa: F401

BACKEND = None
