"""Task proactive_gaze_triggered_alert (answer logic to come)."""
