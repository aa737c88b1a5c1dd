"""``python -m tcptrace_sm`` runs the ``tcpsm`` command."""

from tcptrace_sm.cli import main

if __name__ == "__main__":
    main()
