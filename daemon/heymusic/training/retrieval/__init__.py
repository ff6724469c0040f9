"""The two-tower recommender's training requests, training and evaluation."""
