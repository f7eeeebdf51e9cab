"""The command line's tools: batch runs, parameter checks, the headless engine, the gallery."""
