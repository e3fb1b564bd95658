"""fracbench.metrics"""
