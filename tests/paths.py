"""Where things are, for tests that read the repository's files."""

from pathlib import Path

#: The repository's top directory.
REPO = Path(__file__).resolve().parent.parent
