"""``python -m insilico.cli``: the ``insilico`` command."""
from . import main

main()
