"""fracbench.tasks"""
