"""Data quality: completeness score, duplicates and merge, bulk import and export."""
