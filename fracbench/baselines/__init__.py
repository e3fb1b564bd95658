"""fracbench.baselines"""
