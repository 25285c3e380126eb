"""The embedded sandbox: a local AWS emulator and local trust hosts, for demo and tests."""
