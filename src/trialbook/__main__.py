"""``python -m trialbook`` runs the command line."""

from trialbook.cli.main import main

main()
