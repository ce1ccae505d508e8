"""Plumbing every other part uses: errors, atomic I/O, paths, secrets, provenance, the registry type, declared options, extras and the image reader."""
