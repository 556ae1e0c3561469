"""`python -m autolr ...` is the `autolr` command."""

import sys

from autolr.cli import main

sys.exit(main())
