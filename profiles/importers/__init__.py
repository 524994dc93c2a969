"""Importers: turn what users have (.vmx descriptors, captures) into profiles."""
