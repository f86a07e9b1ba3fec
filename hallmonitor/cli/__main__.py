"""`python -m hallmonitor.cli`: the same as the `hallmonitor` command."""

import sys

from hallmonitor.cli.root import main

sys.exit(main())
