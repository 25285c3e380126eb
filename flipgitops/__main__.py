"""Allow ``python -m flipgitops``."""

from flipgitops.cli import main

if __name__ == "__main__":
    main()
