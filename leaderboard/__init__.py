"""The Gradio leaderboard over the results store."""
