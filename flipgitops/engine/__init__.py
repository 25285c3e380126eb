"""Wires adapters to the pure core: observe(), apply(), reconcile()."""
