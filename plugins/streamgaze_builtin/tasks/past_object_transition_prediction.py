"""Task past_object_transition_prediction (answer logic to come)."""
