"""Entry point: ``python -m serving.modelserver``."""

from serving.modelserver.main import main

raise SystemExit(main())
