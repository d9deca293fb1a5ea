"""`deps-wheelhouse` (seed 004): a user's Python dependencies, in any of six shapes, made into a wheelhouse
for the cluster's Python and verified importable on the driver and the workers.

One module per concern: `archive` (safe extraction, deterministic zips), `shapes` (what the input is),
`reqfile` (what a requirements file may ask for), `wheels` (reading and writing wheel files, tag checks),
`build` (pip, offline-capable), `manifest` (the wheelhouse's description), `verify`, `cleanup`, `cli`,
and `fixtures` (one reproducible input per shape, for the format-validation job). The runtime needs only
the standard library, pip/setuptools/wheel and `packaging` (all on every DBR); pyspark is imported only by
`verify`, and only when a Spark session exists.
"""
