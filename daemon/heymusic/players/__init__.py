"""Players: what the person hears. `make_player` picks one from the settings."""
