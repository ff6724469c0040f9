"""Songs: the catalog and its importers, the title matcher, song features, encoders, index, recommender."""
