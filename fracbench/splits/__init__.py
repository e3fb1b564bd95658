"""fracbench.splits"""
