"""Running load: the run directory, stamped values, pacing and the asyncio load generator."""
