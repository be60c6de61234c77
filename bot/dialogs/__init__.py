"""Dialogues: form definitions (data) and the one pure engine that runs them."""
