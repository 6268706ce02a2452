"""``python -m nitro_attest``: the ``nitro-attest`` command line."""

from .cli import main

raise SystemExit(main())
