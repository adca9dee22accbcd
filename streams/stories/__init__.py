"""Stories: which mentions are copies of one post, and which tell the same story (plain code, no Faust)."""
