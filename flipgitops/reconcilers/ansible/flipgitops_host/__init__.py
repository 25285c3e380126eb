"""The flipgitops host program's package (runner, steps, facts) and its pure helpers, also
imported by the controller.

It runs on trust hosts under whatever Python 3 the host has (3.7 or newer), imported from
memory by host_program.py's bootstrap: stdlib only, no flipgitops imports. FLIP's names and
layouts reach it as step arguments from the controller (`model/flip.py` stays their one
home).
"""
