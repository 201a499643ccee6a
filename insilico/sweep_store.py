"""The sweep store under its first name; it lives in :mod:`insilico.engine.store`."""
from .engine.store import SweepError, chunk_checksum, describe, describe_static, store_status, write_atomic

__all__ = ["SweepError", "describe", "describe_static", "store_status", "chunk_checksum", "write_atomic"]
