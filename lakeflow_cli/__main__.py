import sys

from lakeflow_cli.main import main

sys.exit(main())
