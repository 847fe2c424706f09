"""Subcommands of the ``painmon`` command line.

Each module here defines ``register(subparsers)`` that adds one subcommand and sets
``func`` (a callable taking the parsed args and returning an exit code). The CLI discovers
them, so adding a command never touches a shared file.
"""
