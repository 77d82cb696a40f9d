"""Processors: each turns a batch of span rows into a batch of span rows."""
