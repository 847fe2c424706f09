"""PainMon application: engine worker, Qt dashboard, command line, headless service."""
