"""``python -m django_zhenzi.sandbox``: run the sandbox until Ctrl-C or SIGTERM."""

from .cli import main

raise SystemExit(main())
