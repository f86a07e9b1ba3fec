"""`hallmonitor` command line, one module per group of commands: `root` (the parser, logging,
--env-file and how errors are shown), `common` (the config, the database, JSON lines),
`running` (run, poll), `upkeep` (check-config, doctor, backup, restore), `queue`, `tools`
(triage, deadline, ask, score, policy) and `records` (report, export, audit, hold,
subject-access, erase, purge)."""

from hallmonitor.cli.root import build_parser, load_env_file, main

__all__ = ["build_parser", "load_env_file", "main"]
