"""Runs: a command's inputs read, computed and written (coverage, isochrones and site runs, audits,
comparisons). The only room that calls the readers, the engine and the outputs together.
"""
