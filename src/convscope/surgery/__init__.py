"""Lessons 01-02: designer filters and net surgery."""
