"""The operator's commands: the CLI verbs, plan under mocks, diff, smoke, CI helpers, backups and restore."""
