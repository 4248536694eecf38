"""Latency: HDR histograms, the client-side recorder, the interval log, thresholds."""
