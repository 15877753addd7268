"""The eib server: a warm process that answers quick commands in milliseconds.

Importing typer, pydantic and PyYAML and building the recipe validators costs
several hundred milliseconds on a small CI machine, far more than compiling
a plan.  CI runs `eib plan` hundreds of times a day, so the first quick
command starts a server that has all of that loaded; later ones fork a child
of it that runs the command with the caller's argv, environment, working
directory, umask and standard streams (passed as file descriptors), and the
caller exits with the child's status.

Only side-effect-free commands go through it (`plan`, `validate`, `schema`,
`legacy`, `convert`, help and version); builds run in their own process.
The server is keyed by a fingerprint of the code it runs, so an edited or
upgraded eib (or library) gets a fresh one; it exits when idle.
`EIB_SERVER=off` disables it.

These modules import only the standard library except `daemon.py`, which
is the server itself: the client side must cost next to nothing.
"""
