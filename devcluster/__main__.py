import sys

from devcluster.serve import main

sys.exit(main())
