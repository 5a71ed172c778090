"""Plain argparse command-line tools (the Hydra apps live in ipguard.cli)."""
