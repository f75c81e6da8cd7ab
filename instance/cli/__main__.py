"""`python -m instance.cli`: the dreamloom command (how the supervisor starts its processes)."""

from instance.cli import main

main()
