"""``python -m simulator``: the same command as ``remixq simulator``."""

from simulator.cli import simulator

if __name__ == "__main__":
    simulator()
