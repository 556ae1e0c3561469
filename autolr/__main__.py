"""`python -m autolr ...` is the `autolr` command."""

import os
import sys

# `python -m` puts the working directory first on the path, where the `autolr` script
# puts nothing: a file there named as a library autolr loads (optuna.py, torch.py) would
# then be imported in its place, with that file's traceback. Taken off, as the script
# runs; the command puts it back where it is needed (a module named by its dotted name).
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from autolr.cli import main  # noqa: E402  (after the path is as the script's)

sys.exit(main())
