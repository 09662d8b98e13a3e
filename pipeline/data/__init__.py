"""Data: IDX reading, composition (Composition-1k protocol and procedural default), trimaps, datasets.

Modules are imported explicitly (e.g. `from pipeline.data.trimap import random_trimap`); importing the package
does no work.
"""
