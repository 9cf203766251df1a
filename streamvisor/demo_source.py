"""``python -m streamvisor.demo_source``: kept so the README's command keeps working; the
demo source lives in ``streamvisor.demo.source``."""

from streamvisor.demo.source import main

if __name__ == "__main__":
    raise SystemExit(main())
