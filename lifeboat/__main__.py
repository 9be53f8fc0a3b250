"""``python -m lifeboat``."""

from lifeboat.cli import main

main()
