"""`python -m recap.cli`: the same commands as `recap`."""

from recap.cli import app

app()
