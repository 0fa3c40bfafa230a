"""Task past_non_fixated_object_identification (answer logic to come)."""
