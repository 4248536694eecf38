"""Subcommand adapters: each has ``configure(parser)`` and ``run(args) -> exit code``."""
