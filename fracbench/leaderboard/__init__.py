"""fracbench.leaderboard"""
