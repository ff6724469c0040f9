"""Every room: Wyoming satellites feeding one pipeline per room over shared models, and
the Wyoming services Home Assistant can use (conversation agent, wake word)."""
