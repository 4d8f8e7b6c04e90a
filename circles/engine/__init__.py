"""The engine: the walking network, placement, routing, isochrones, coverage, service access, siting,
gaps and standards. Arrays and frames in and out; no files, no printing.
"""
