import sys

from perftop.launch import main

sys.exit(main())
