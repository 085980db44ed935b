"""`python -m acqsynth.cli ...` (as `accelerate launch -m acqsynth.cli grpo ...` needs)."""

import sys

from acqsynth.cli.commands import main

sys.exit(main())
