"""``python -m nova`` is the ``nova`` command."""

from nova.cli import main

main()
