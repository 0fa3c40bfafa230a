"""Task present_object_identification_hard (answer logic to come)."""
