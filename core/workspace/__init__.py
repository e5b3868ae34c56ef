"""The workspace: studies, runs and notes in SQLite, the job worker, logins and uploads."""
