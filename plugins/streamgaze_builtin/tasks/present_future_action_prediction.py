"""Task present_future_action_prediction (answer logic to come)."""
