"""Code changes, applied safely: check, write, restart, verify, or roll back; recorded and reversible.

A change is a set of whole-file edits (from a unified diff, a whole file with
its target path, or Chip's rewrite of one definition) to the project's own
source in a checkout or to the user's plugins in the data dir (`files.py`).
Before anything is written, every Python file parses and the app imports in a
throwaway process (`checks.py`). Then the files are written and the server
restarts (the dev loop restarts it under `--watch`, otherwise it re-executes
itself); the new process checks its own health and, if anything fails, puts the
old files back and restarts on them (`service.py`). Applied and reverted changes
are events in the action log with every file's contents before and after.
"""
