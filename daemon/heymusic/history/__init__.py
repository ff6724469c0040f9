"""Listening history and the taste it teaches: the database, and the profile built from it."""
