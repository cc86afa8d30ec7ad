import sys

from llmstage.cli import main

sys.exit(main())
