"""Training metrics: per-activity load, daily CTL/ATL/TSB, weekly rollups."""
