"""Task past_scene_recall (answer logic to come)."""
