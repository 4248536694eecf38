"""Histories: the event format, the recorder (a client listener) and the reader."""
