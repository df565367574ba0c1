"""`python -m xentcli`: the same as `xent`."""

from .cli import main

main()
