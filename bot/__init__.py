"""Hailuo Bot: MiniMax Hailuo-02 video generation for Discord, through Novita."""

__version__ = "0.1.0"
