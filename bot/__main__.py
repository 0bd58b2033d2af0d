import sys

from bot.gateway.cli import main

sys.exit(main())
