"""The `compose` stage's library: matting data sources (procedural default, Composition-1k, D646, folders),
Adobe-exact composition, the composed set with its manifest, evaluation-only set validation, a contact sheet."""
