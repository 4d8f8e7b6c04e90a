"""Readers: files to frames (OSM, road lines, tables, facilities, population, services, profiles, CRS).

They know no graph and no run folder: nothing here imports from the engine, the runs or the outputs.
"""
