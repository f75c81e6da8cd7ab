"""Keeping an instance healthy from the CLI: media pruning (prune.py), backup and restore as
one consistent archive (backup.py, restore.py), and `doctor`'s checks (doctor.py)."""
