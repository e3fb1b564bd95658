"""Reading a FracAtlas release as published, and auditing its integrity."""
