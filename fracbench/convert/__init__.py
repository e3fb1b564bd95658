"""fracbench.convert"""
