import sys

from rawdqn.cli import main

sys.exit(main())
