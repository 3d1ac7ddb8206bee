"""`python3 -m compare`: the comparison (compare.py)."""

from .compare import main

main()
