"""What a user types: the command line, and what reads or prepares a run (inspect, export, estimate, scaffolds)."""
