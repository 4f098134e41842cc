"""Rendering an appeal for one target and channel: letter text, email, fax PDF, tweet."""
