"""Gate: margin sampling decides whether the small summary is kept or the job goes to the large model."""
