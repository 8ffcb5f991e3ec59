"""The machinery that runs a pipeline: plugins and config, the runner and the run's context, steps and executors, the store, the manifest, progress and composition."""
