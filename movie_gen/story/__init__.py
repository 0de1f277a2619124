"""The story itself: the bible and its set plans, the segments, the text rules and the assembled script."""
