"""Pure functions: no I/O, no SDK imports. Parse, validate, diff, plan, guards, render."""
