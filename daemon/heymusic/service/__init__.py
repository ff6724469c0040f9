"""The daemon: the Pipeline (its stages passed in), its assembly from config, the run and simulate loops, and the event log."""
