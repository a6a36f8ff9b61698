"""The bottom layer: types, errors, names, env files, rendering, and a service's plan as plain data. Imports nothing
above it.
"""
