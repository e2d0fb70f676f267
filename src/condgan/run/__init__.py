"""The run directory: its config file, checkpoints and logs (`directory`), and checkpoint files
(`checkpoint`: atomic writes, safe loads, architecture checks, newest-checkpoint lookup)."""
