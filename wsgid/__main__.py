import sys

from wsgid.cli import main

sys.exit(main())
