"""Whole datasets into the store: recipes (`recipes`), discovery of recordings (`discovery`), per-recording checks
(`checks`) and the parallel, per-recording-atomic ingest (`run`) behind ``streamgaze ingest-dataset``."""
