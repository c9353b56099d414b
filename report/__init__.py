"""The experiment of issue #7: report, order story, capacity preview, and the reproduction verdict."""
