"""Workout sessions: the payload model, the JSON export files and the SQL rows."""
