"""Scenario files (the model and its checker), their runner, and session pacing."""
