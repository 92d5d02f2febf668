"""Converters from other ecosystems' checkpoints into our state-dict layout, one module per source."""
