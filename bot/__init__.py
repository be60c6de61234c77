"""posbot: the after-care bot for POS terminal merchants."""
