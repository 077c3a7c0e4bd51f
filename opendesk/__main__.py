import sys

from opendesk.cli import main

sys.exit(main())
