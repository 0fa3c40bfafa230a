"""Task present_object_identification_easy (answer logic to come)."""
