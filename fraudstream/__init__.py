"""fraudstream: streaming, real-time card-fraud detection.

The project's own packages are ``stream`` (Kafka, Faust, wire schemas), ``features`` (online and
offline features), ``models`` (River models, registry, learning, evaluation) and ``api`` (FastAPI).
This package holds what they all share: the settings, the errors and the command line.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
