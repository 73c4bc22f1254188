"""Features: declarative definitions, the Redis online store, the offline twin, selection, EDA.

A library shared by the worker and the API; it never imports the Faust app, the agents or the API.
"""
