"""Widgets: thin wrappers over the lessons' plain figure functions."""
