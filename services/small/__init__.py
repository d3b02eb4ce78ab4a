"""Small model: FLAN-T5 summarizes every job and scores its own uncertainty for the gate."""
