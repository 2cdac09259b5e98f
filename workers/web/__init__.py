"""The web console (`trainlog web`): reference data and the pipeline's state for people."""
