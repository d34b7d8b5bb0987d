"""``python -m reldist``: the same as the ``reldist`` command."""

from reldist.cli import main

main(prog_name="reldist")
