"""Exports of an assembled script: Fountain, HTML and PDF screenplays, and a CSV shot list."""
