"""``python -m streamvisor``."""

from streamvisor.cli.main import main

raise SystemExit(main())
