"""Small unmodified applications the probe tests run under ``deskprof run`` (no deskprof
imports here: the probe must find its way in on its own)."""
