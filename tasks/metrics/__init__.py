"""Training metrics (SPEC 6): per-activity load, daily CTL/ATL/TSB, weekly rollups."""
