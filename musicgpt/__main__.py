import sys

from musicgpt.cli import main

sys.exit(main())
