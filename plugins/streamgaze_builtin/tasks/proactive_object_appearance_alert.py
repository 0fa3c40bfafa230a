"""Task proactive_object_appearance_alert (answer logic to come)."""
