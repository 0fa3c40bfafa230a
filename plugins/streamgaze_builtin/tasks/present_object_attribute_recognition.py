"""Task present_object_attribute_recognition (answer logic to come)."""
