"""`python -m bnexp`: the same command as `bnexp`."""

from bnexp.cli import main

if __name__ == "__main__":
    main()
