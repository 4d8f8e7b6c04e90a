"""Outputs: run folders and manifests (atomic), tables, layers, maps, figures, the report, the explorer,
offline assets and every page string (i18n). They read engine results; they compute nothing new.
"""
