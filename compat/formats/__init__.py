"""Readers and writers of the legacy file formats, by format, none of which needs its framework installed."""
