"""``python -m streamvisor``."""

from streamvisor.cli import main

raise SystemExit(main())
