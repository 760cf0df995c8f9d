import sys

try:
    from livestyle.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python loads the CLI: quiet, like any other moment
    sys.exit(130)

sys.exit(main())
