"""``python -m policies.cli``."""

from policies.cli import app

app()
