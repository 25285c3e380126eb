"""Pure helpers shared by flipgitops' host modules (and imported by the controller).

They run on trust hosts under whatever Python 3 the host has: stdlib only, no f-string
tricks newer than 3.6, no flipgitops imports. FLIP's names and layouts reach them as module
arguments from the controller (`model/flip.py` stays their one home).
"""
