"""The beat scheduler (the pipeline issue)."""
