"""Task past_gaze_sequence_matching (answer logic to come)."""
