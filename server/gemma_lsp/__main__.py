import sys

from gemma_lsp.cli import main

sys.exit(main())
