"""The shared preference-optimization core: one loop, methods as losses."""
